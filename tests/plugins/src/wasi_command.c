/* A WASI command for the fleet tests: prints argv and GREETING, writes two lines
   to the file named by argv[2] (if any), echoes stdin upper-cased, exits with argv[1]. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
  for (int i = 0; i < argc; i++) printf("argv[%d]=%s\n", i, argv[i]);
  const char *g = getenv("GREETING");
  if (g) printf("GREETING=%s\n", g);
  fflush(stdout);
  fprintf(stderr, "to stderr\n");
  if (argc > 2) {
    FILE *f = fopen(argv[2], "w");
    if (!f) return 99;
    fputs("written 1\nwritten 2\n", f);
    fclose(f);
  }
  char line[256];
  while (fgets(line, sizeof line, stdin)) {
    for (char *p = line; *p; p++) *p = toupper((unsigned char)*p);
    fputs(line, stdout);
    fflush(stdout);
  }
  return argc > 1 ? atoi(argv[1]) : 0;
}
