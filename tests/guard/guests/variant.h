/* One added behaviour per variant of a benign guest, chosen at build time with
   -DVARIANT=N (0 or absent: the benign module itself). The detection tests learn
   the benign module and expect each variant to be found. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef VARIANT
#define VARIANT 0
#endif

static volatile unsigned long variant_sink;
static char *volatile variant_kept; /* an allocation kept here is not optimized away */

static void variant_spin(long n) {
    for (long i = 0; i < n; i++) variant_sink += (unsigned long)i * 2654435761u;
}

static void variant_work(long n) {
    (void)n;
#if VARIANT == 1 /* reads one more variable */
    const char *h = getenv("HOME");
    if (h) variant_sink += (unsigned long)strlen(h);
#elif VARIANT == 2 /* opens a file it never opened */
    FILE *f = fopen("/data/extra.txt", "r");
    if (f) fclose(f);
#elif VARIANT == 3 /* twice the work: fuel doubles */
    variant_spin(200000 + n);
#elif VARIANT == 4 /* four times the memory */
    char *p = malloc(4 << 20);
    if (p) { memset(p, 1, 4 << 20); variant_kept = p; }
#elif VARIANT == 5 /* an output burst */
    for (int i = 0; i < 2000; i++) puts("..........................................");
#elif VARIANT == 6 /* asks the clock in a loop */
    struct timespec ts;
    for (int i = 0; i < 500; i++) clock_gettime(CLOCK_MONOTONIC, &ts);
#elif VARIANT == 7 /* random bytes it never asked for */
    unsigned char b[64];
    for (int i = 0; i < 64; i++) getentropy(b, sizeof b);
#elif VARIANT == 8 /* writes a file */
    FILE *f = fopen("/out/dropped.txt", "w");
    if (f) { fputs("x", f); fclose(f); }
#elif VARIANT == 9 /* sleeps */
    struct timespec d = {0, 50 * 1000 * 1000};
    nanosleep(&d, NULL);
#elif VARIANT == 10 /* opens its own file through ".." */
    FILE *f = fopen("/data/../data/in.txt", "r");
    if (f) fclose(f);
#endif
    variant_spin(200000);
}

#define VARIANT_WORK(n) variant_work((long)(n))
#if VARIANT == 11 /* an odd exit code */
#define VARIANT_EXIT 3
#else
#define VARIANT_EXIT 0
#endif
