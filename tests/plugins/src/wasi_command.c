/* A WASI command for the fleet tests: prints argv and GREETING, echoes stdin upper-cased, exits with argv[1]. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ctype.h>
int main(int argc, char **argv) {
  for (int i = 0; i < argc; i++) printf("argv[%d]=%s\n", i, argv[i]);
  const char *g = getenv("GREETING"); if (g) printf("GREETING=%s\n", g);
  fflush(stdout);
  fprintf(stderr, "to stderr\n");
  char line[256];
  while (fgets(line, sizeof line, stdin)) { for (char *p = line; *p; p++) *p = toupper(*p); fputs(line, stdout); fflush(stdout); }
  return argc > 1 ? atoi(argv[1]) : 0;
}
