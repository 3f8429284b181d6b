/* WAGI hello: greets the query string. */
#include <stdio.h>
#include <stdlib.h>

int main(void) {
    const char *q = getenv("QUERY_STRING");
    printf("content-type: text/plain\n\nhello %s\n", q ? q : "");
    return 0;
}
