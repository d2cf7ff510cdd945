/* printf of integers and doubles in many formats: exercises glibc's number formatting
 * (integer division, SSE2 double arithmetic and conversions). */
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>

int main(void)
{
    static const long long ints[] = {
        0, 1, -1, 7, -42, 255, 256, 65535, -65536, 1000000, -999999999,
        INT_MAX, INT_MIN, LLONG_MAX, LLONG_MIN, 0x123456789abcdefLL,
    };
    static const double dbls[] = {
        0.0, -0.0, 1.0, -1.5, 3.14159265358979, 2.718281828459045, 1e-300, -1e300,
        123456789.125, 0.1, 1.0 / 3.0, 6.02214076e23, -1.602176634e-19, 1e16, 9.999999e-5,
    };
    for (unsigned i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        long long v = ints[i];
        printf("%lld|%20lld|%-20lld|%+lld|%llx|%llo|%#llX|%020lld\n", v, v, v, v,
               (unsigned long long)v, (unsigned long long)v, (unsigned long long)v, v);
        printf("  int:%d u:%u hd:%hd hhu:%hhu\n", (int)v, (unsigned)v, (short)v, (unsigned char)v);
    }
    for (unsigned i = 0; i < sizeof dbls / sizeof dbls[0]; i++) {
        double d = dbls[i];
        printf("%f|%e|%g|%.0f|%.10f|%15.3e|%-12g|%+.17g|%a\n", d, d, d, d, d, d, d, d, d);
        printf("  scaled:%g sq:%.12g neg:%g int:%lld\n", d * 1000.5, d * d, -d,
               (long long)(d > 9e18 || d < -9e18 ? 0 : d));
    }
    /* Arithmetic whose result depends on correct rounding of every step. */
    double sum = 0.0, prod = 1.0;
    for (int i = 1; i <= 1000; i++) {
        sum += 1.0 / i;
        prod *= 1.0 + 1.0 / (i * 10.0);
    }
    printf("harmonic(1000)=%.15f prod=%.15e\n", sum, prod);
    float f = 0.0f;
    for (int i = 0; i < 100; i++)
        f += 0.1f;
    printf("float sum=%.9g as double=%.17g\n", f, (double)f);
    uint64_t u = UINT64_MAX;
    printf("u64max=%" PRIu64 " hex=%" PRIx64 " %s\n", u, u, "done");
    return 0;
}
