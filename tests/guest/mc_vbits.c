/* Memcheck client requests on V bits: SET_VBITS then GET_VBITS gives the pattern back,
   CHECK_VALUE_IS_DEFINED reports a partly undefined value, GET on unaddressable memory
   fails with 3, and a range with address errors disabled reports none. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <valgrind/memcheck.h>

int main(void) {
    unsigned char buf[8], set[8], got[8];
    memset(buf, 0, sizeof buf);
    memset(set, 0, sizeof set);
    set[2] = 0xff;
    set[3] = 0x0f;
    int r_set = VALGRIND_SET_VBITS(buf, set, 8);
    int r_get = VALGRIND_GET_VBITS(buf, got, 8);
    printf("set %d get %d: %02x %02x %02x %02x\n", r_set, r_get, got[1], got[2], got[3], got[4]);
    VALGRIND_CHECK_VALUE_IS_DEFINED(buf[3]); /* CHECKVAL */
    VALGRIND_CHECK_VALUE_IS_DEFINED(buf[4]);

    char *p = malloc(8); /* ALLOC */
    int r_bad = VALGRIND_GET_VBITS(p + 4, got, 8);
    int r_badset = VALGRIND_SET_VBITS(p + 4, set, 8);
    printf("unaddressable: get %d set %d\n", r_bad, r_badset);

    int r_dis = VALGRIND_DISABLE_ADDR_ERROR_REPORTING_IN_RANGE(p + 8, 8);
    int r_zero = VALGRIND_DISABLE_ADDR_ERROR_REPORTING_IN_RANGE(p, 0);
    p[9] = 1; /* silent */
    int r_en = VALGRIND_ENABLE_ADDR_ERROR_REPORTING_IN_RANGE(p + 8, 8);
    p[10] = 1; /* REPORTED */
    printf("ranges: %d %d %d\n", r_dis, r_zero, r_en);
    free(p);
    return 0;
}
