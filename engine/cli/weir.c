/*
 * engine/cli/weir.c - the weir program: everything it does is in libweir.so
 * (cli/main.c), where the jobs it loads find the same engine.
 */
int weir_cli_main(int argc, char **argv);

int main(int argc, char **argv)
{
	return weir_cli_main(argc, argv);
}
