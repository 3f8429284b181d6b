/* Reads its input file, and also tries /etc/passwd (what a compromised dependency
   might do). The example of docs/guard.md and the README. */
#include <stdio.h>

static void show(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) { perror(path); return; }
    char line[128];
    if (fgets(line, sizeof line, f)) printf("%s: %s", path, line);
    fclose(f);
}

int main(void) {
    show("/data/input.txt");
    show("/etc/passwd");
    return 0;
}
