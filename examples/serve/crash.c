/* Misbehaving WAGI handler: traps on a query it does not expect (anything not
   starting with '{'): a 500, with the trap and its frames in the invocation span. */
#include <stdio.h>
#include <stdlib.h>

__attribute__((noinline)) static void parse_order(const char *input) {
    if (!input || input[0] != '{') __builtin_trap();
}

int main(void) {
    fputs("crash: parsing the order in the query string\n", stderr);
    parse_order(getenv("QUERY_STRING"));
    printf("content-type: text/plain\n\norder accepted\n");
    return 0;
}
