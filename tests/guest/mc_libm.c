/* libm on defined inputs: glibc picks its FMA variants of sin/exp/pow/log when the CPU has FMA,
 * so memcheck must follow definedness through fused multiply-adds (and report nothing here). */
#include <math.h>
#include <stdio.h>

int main(void)
{
    double s = 0;
    for (int i = 0; i < 2000; i++) {
        double x = i * 0.01;
        s += sin(x) * exp(-x * 0.1) + pow(1.0001, i) + log1p(x) + atan(x);
    }
    printf("%.6f\n", s);
    return s > 0 ? 0 : 1;
}
