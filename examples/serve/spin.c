/* Misbehaving WAGI handler: never ends; only the route's timeout stops it (504). */
#include <stdio.h>

static volatile unsigned long counter;

int main(void) {
    printf("content-type: text/plain\n\n");
    fflush(stdout);
    for (;;) counter++;
}
