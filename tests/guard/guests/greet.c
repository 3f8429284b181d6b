/* Benign: greets argv[1] with the GREETING variable (or "hello"). */
#include <stdio.h>
#include <stdlib.h>
#include "variant.h"

int main(int argc, char **argv) {
    const char *greeting = getenv("GREETING");
    const char *name = argc > 1 ? argv[1] : "world";
    printf("%s, %s!\n", greeting ? greeting : "hello", name);
    VARIANT_WORK(1000);
    return VARIANT_EXIT;
}
