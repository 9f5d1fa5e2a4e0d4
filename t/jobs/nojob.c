/* A shared object without weir_job. */
int not_a_job(void);
int not_a_job(void) { return 0; }
