/*
 * t1530-ctl-sha: SHA-256 known answers (FIPS 180-2 examples) from a
 * buffer and from a file (a million bytes: many reads), the file's size,
 * a missing file named in the trail; hex both ways, bad hex refused;
 * digest comparison.
 */
#include "base/err.h"
#include "ctl/sha.h"
#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *hex(const uint8_t d[WEIR_SHA256_LEN])
{
	static char s[WEIR_SHA256_HEX_LEN + 1];
	weir_hex_encode(d, WEIR_SHA256_LEN, s);
	return s;
}

int main(void)
{
	static const struct { const char *in, *want; } kat[] = {
		{ "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
		{ "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
		{ "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
		  "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1" },
	};
	static const char million_a[] = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
	uint8_t d[WEIR_SHA256_LEN], d2[WEIR_SHA256_LEN];
	char path[] = "/tmp/weir-t1530-XXXXXX";
	uint64_t size = 0;

	for (size_t i = 0; i < sizeof(kat) / sizeof(kat[0]); i++) {
		int rc = weir_sha256_buf(kat[i].in, strlen(kat[i].in), d);
		ok(rc == 0, "sha256 of %zu bytes", strlen(kat[i].in));
		is_string(hex(d), kat[i].want, "known answer %zu", i);
	}

	char *a = malloc(1000000);
	if (!a)
		bail("out of memory");
	memset(a, 'a', 1000000);
	weir_sha256_buf(a, 1000000, d);
	is_string(hex(d), million_a, "a million 'a' from a buffer");
	int fd = mkstemp(path);
	if (fd < 0 || write(fd, a, 1000000) != 1000000)
		bail("write %s: %m", path);
	close(fd);
	free(a);
	memset(d, 0, sizeof(d));
	ok(weir_sha256_file(path, d, &size) == 0 && size == 1000000, "from a file of 1000000 bytes (size %llu)",
	   (unsigned long long)size);
	is_string(hex(d), million_a, "a million 'a' from a file");
	unlink(path);
	int rc = weir_sha256_file(path, d, &size);
	ok(rc == -ENOENT && strstr(weir_err_msg(), path), "a missing file: -ENOENT, named (%s)", weir_err_msg());

	ok(weir_hex_decode(million_a, d2, sizeof(d2)) == 0 && !memcmp(d, d2, sizeof(d)), "hex decodes back");
	ok(weir_hex_decode("CDC76E5C9914FB9281A1C7E284D73E67F1809A48A497200E046D39CCC7112CD0", d2, sizeof(d2)) == 0 &&
		   weir_digest_equal(d, d2, sizeof(d)),
	   "upper-case hex too; digests equal");
	d2[31] ^= 1;
	ok(!weir_digest_equal(d, d2, sizeof(d)), "one bit apart: not equal");
	is_int(weir_hex_decode("cdc7", d2, 3), -EINVAL, "too short: -EINVAL");
	is_int(weir_hex_decode("cdc7e5c9", d2, 3), -EINVAL, "too long: -EINVAL");
	is_int(weir_hex_decode("cdc", d2, 2), -EINVAL, "odd length: -EINVAL");
	is_int(weir_hex_decode("cdxz", d2, 2), -EINVAL, "not hex: -EINVAL");
	is_int(weir_hex_decode("", d2, 0), 0, "empty: fine");
	done_testing();
}
