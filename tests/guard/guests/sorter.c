/* Benign: sorts the numbers in argv and writes them to /out/sorted.txt. */
#include <stdio.h>
#include <stdlib.h>
#include "variant.h"

static int cmp(const void *a, const void *b) {
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    long *v = malloc(sizeof(long) * (size_t)(argc > 1 ? argc : 1));
    if (!v) return 1;
    for (int i = 1; i < argc; i++) v[i - 1] = atol(argv[i]);
    qsort(v, (size_t)(argc - 1), sizeof(long), cmp);
    FILE *f = fopen("/out/sorted.txt", "w");
    if (!f) { perror("/out/sorted.txt"); return 1; }
    for (int i = 0; i < argc - 1; i++) fprintf(f, "%ld\n", v[i]);
    fclose(f);
    VARIANT_WORK(argc * 100);
    printf("sorted %d numbers\n", argc - 1);
    free(v);
    return VARIANT_EXIT;
}
