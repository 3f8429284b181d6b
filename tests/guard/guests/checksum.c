/* Benign: the FNV-1a 64 hash of stdin. */
#include <stdint.h>
#include <stdio.h>
#include "variant.h"

int main(void) {
    uint64_t h = 1469598103934665603ull;
    long n = 0;
    int c;
    while ((c = getchar()) != EOF) { h = (h ^ (uint8_t)c) * 1099511628211ull; n++; }
    VARIANT_WORK(n);
    printf("%016llx %ld\n", (unsigned long long)h, n);
    return VARIANT_EXIT;
}
