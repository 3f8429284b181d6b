/* Benign: counts lines, words and bytes of /data/FILE (argv[1]). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include "variant.h"

int main(int argc, char **argv) {
    char path[256];
    snprintf(path, sizeof path, "/data/%s", argc > 1 ? argv[1] : "in.txt");
    FILE *f = fopen(path, "r");
    if (!f) { perror(path); return 1; }
    long lines = 0, words = 0, bytes = 0;
    int c, in_word = 0;
    while ((c = fgetc(f)) != EOF) {
        bytes++;
        if (c == '\n') lines++;
        if (isspace(c)) in_word = 0;
        else if (!in_word) { in_word = 1; words++; }
    }
    fclose(f);
    VARIANT_WORK(bytes);
    printf("%ld %ld %ld %s\n", lines, words, bytes, path);
    return VARIANT_EXIT;
}
