/* INCRBYFLOAT arithmetic in C's long double, exactly as Redis does it (strtold, +, "%.17Lf"
 * with trailing zeros trimmed), so results and their text match Redis digit for digit. Rust
 * has no long double type. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LONG_DOUBLE_CHARS (5 * 1024)

/* Redis's string2ld: no leading space, whole string consumed (an embedded NUL ends the parse
 * early and fails it), no overflow, no NaN. */
static int parse_ld(const char *s, size_t len, long double *out) {
    char buf[MAX_LONG_DOUBLE_CHARS];
    char *end;
    if (len == 0 || len >= sizeof(buf)) return 0;
    memcpy(buf, s, len);
    buf[len] = '\0';
    errno = 0;
    long double v = strtold(buf, &end);
    if (isspace((unsigned char)buf[0]) || end[0] != '\0' || (size_t)(end - buf) != len ||
        (errno == ERANGE && (v == HUGE_VALL || v == -HUGE_VALL || fpclassify(v) == FP_ZERO)) ||
        isnan(v))
        return 0;
    *out = v;
    return 1;
}

/* Returns the length written to `out`, or -1 (current value not a float), -2 (increment
 * not a float), -3 (result NaN or infinite), -4 (no room). */
long corekv_incr_long_double(const char *cur, size_t cur_len, const char *incr, size_t incr_len,
                             char *out, size_t out_cap) {
    long double value = 0, delta;
    if (cur != NULL && !parse_ld(cur, cur_len, &value)) return -1;
    if (!parse_ld(incr, incr_len, &delta)) return -2;
    value += delta;
    if (isnan(value) || isinf(value)) return -3;
    int l = snprintf(out, out_cap, "%.17Lf", value);
    if (l < 0 || (size_t)l + 1 > out_cap) return -4;
    if (strchr(out, '.') != NULL) {
        char *p = out + l - 1;
        while (*p == '0') { p--; l--; }
        if (*p == '.') l--;
    }
    if (l == 2 && out[0] == '-' && out[1] == '0') { out[0] = '0'; l = 1; }
    return l;
}
