/* Private to the UTF-8 module (core/utf8*.c): the lookup tables of the Keiser-Lemire validator
 * that utf8_avx2.c and utf8_avx512.c share, so both vector widths classify bytes identically.
 * Nothing outside core/utf8*.c may include this file.
 *
 * The method (J. Keiser, D. Lemire, "Validating UTF-8 In Less Than One Instruction Per Byte",
 * Software: Practice and Experience, 2021): every error that can be seen in a pair of adjacent
 * bytes is one bit of an "error class" byte. Three 16-entry tables, indexed by the high nibble
 * of the previous byte, its low nibble and the high nibble of the current byte, each give the
 * classes the pair could belong to judging by that nibble alone; the AND of the three lookups
 * is the set of classes the pair really belongs to. A pair of continuation bytes is an error
 * (TWO_CONTS) unless the byte is the 3rd or 4th of a sequence, which the caller finds from the
 * bytes two and three positions back and cancels with an XOR. */
#ifndef URINGWS_UTF8_INTERNAL_H
#define URINGWS_UTF8_INTERNAL_H

#include <stdint.h>

/* Error classes of a (previous byte, current byte) pair; bit values are arbitrary but unique,
 * except that OVERLONG_4 and TOO_LARGE_1000 share a bit: both need a current byte 0x80..0x8F,
 * and their lead bytes (F0 versus F5..FF) differ in the low nibble, which table 2 separates. */
#define WS__U8_TOO_SHORT      0x01 /* 11xxxxxx then 0xxxxxxx or 11xxxxxx: lead not continued */
#define WS__U8_TOO_LONG       0x02 /* 0xxxxxxx then 10xxxxxx: continuation after ASCII */
#define WS__U8_OVERLONG_3     0x04 /* E0 then 80..9F */
#define WS__U8_TOO_LARGE      0x08 /* F4 then 90..BF, or F5..FF then 90..BF */
#define WS__U8_SURROGATE      0x10 /* ED then A0..BF (U+D800..U+DFFF) */
#define WS__U8_OVERLONG_2     0x20 /* C0 or C1 then 80..BF */
#define WS__U8_TOO_LARGE_1000 0x40 /* F5..FF then 80..8F */
#define WS__U8_OVERLONG_4     0x40 /* F0 then 80..8F */
#define WS__U8_TWO_CONTS      0x80 /* 10xxxxxx then 10xxxxxx: fine only inside a 3/4-byte char */

/* Classes that do not depend on the low nibble of the previous byte. */
#define WS__U8_CARRY (WS__U8_TOO_SHORT | WS__U8_TOO_LONG | WS__U8_TWO_CONTS)

/* Table 1, by the high nibble of the previous byte. */
static const uint8_t ws__utf8_prev_high[16] = {
    /* 0x0_..0x7_ ASCII */
    WS__U8_TOO_LONG,
    WS__U8_TOO_LONG,
    WS__U8_TOO_LONG,
    WS__U8_TOO_LONG,
    WS__U8_TOO_LONG,
    WS__U8_TOO_LONG,
    WS__U8_TOO_LONG,
    WS__U8_TOO_LONG,
    /* 0x8_..0xB_ continuation */
    WS__U8_TWO_CONTS,
    WS__U8_TWO_CONTS,
    WS__U8_TWO_CONTS,
    WS__U8_TWO_CONTS,
    /* 0xC_ */ WS__U8_TOO_SHORT | WS__U8_OVERLONG_2,
    /* 0xD_ */ WS__U8_TOO_SHORT,
    /* 0xE_ */ WS__U8_TOO_SHORT | WS__U8_OVERLONG_3 | WS__U8_SURROGATE,
    /* 0xF_ */ WS__U8_TOO_SHORT | WS__U8_TOO_LARGE | WS__U8_TOO_LARGE_1000 | WS__U8_OVERLONG_4,
};

/* Table 2, by the low nibble of the previous byte. */
static const uint8_t ws__utf8_prev_low[16] = {
    /* 0x_0: C0, E0, F0 */
    WS__U8_CARRY | WS__U8_OVERLONG_2 | WS__U8_OVERLONG_3 | WS__U8_OVERLONG_4,
    /* 0x_1: C1 */
    WS__U8_CARRY | WS__U8_OVERLONG_2,
    /* 0x_2, 0x_3 */
    WS__U8_CARRY,
    WS__U8_CARRY,
    /* 0x_4: F4 */
    WS__U8_CARRY | WS__U8_TOO_LARGE,
    /* 0x_5..0x_C: F5..FC */
    WS__U8_CARRY | WS__U8_TOO_LARGE | WS__U8_TOO_LARGE_1000,
    WS__U8_CARRY | WS__U8_TOO_LARGE | WS__U8_TOO_LARGE_1000,
    WS__U8_CARRY | WS__U8_TOO_LARGE | WS__U8_TOO_LARGE_1000,
    WS__U8_CARRY | WS__U8_TOO_LARGE | WS__U8_TOO_LARGE_1000,
    WS__U8_CARRY | WS__U8_TOO_LARGE | WS__U8_TOO_LARGE_1000,
    WS__U8_CARRY | WS__U8_TOO_LARGE | WS__U8_TOO_LARGE_1000,
    WS__U8_CARRY | WS__U8_TOO_LARGE | WS__U8_TOO_LARGE_1000,
    WS__U8_CARRY | WS__U8_TOO_LARGE | WS__U8_TOO_LARGE_1000,
    /* 0x_D: ED, FD */
    WS__U8_CARRY | WS__U8_TOO_LARGE | WS__U8_TOO_LARGE_1000 | WS__U8_SURROGATE,
    /* 0x_E, 0x_F: FE, FF */
    WS__U8_CARRY | WS__U8_TOO_LARGE | WS__U8_TOO_LARGE_1000,
    WS__U8_CARRY | WS__U8_TOO_LARGE | WS__U8_TOO_LARGE_1000,
};

/* Table 3, by the high nibble of the current byte. */
static const uint8_t ws__utf8_cur_high[16] = {
    /* 0x0_..0x7_ ASCII */
    WS__U8_TOO_SHORT,
    WS__U8_TOO_SHORT,
    WS__U8_TOO_SHORT,
    WS__U8_TOO_SHORT,
    WS__U8_TOO_SHORT,
    WS__U8_TOO_SHORT,
    WS__U8_TOO_SHORT,
    WS__U8_TOO_SHORT,
    /* 0x8_ */
    WS__U8_TOO_LONG | WS__U8_OVERLONG_2 | WS__U8_TWO_CONTS | WS__U8_OVERLONG_3 |
        WS__U8_TOO_LARGE_1000 | WS__U8_OVERLONG_4,
    /* 0x9_ */
    WS__U8_TOO_LONG | WS__U8_OVERLONG_2 | WS__U8_TWO_CONTS | WS__U8_OVERLONG_3 | WS__U8_TOO_LARGE,
    /* 0xA_, 0xB_ */
    WS__U8_TOO_LONG | WS__U8_OVERLONG_2 | WS__U8_TWO_CONTS | WS__U8_SURROGATE | WS__U8_TOO_LARGE,
    WS__U8_TOO_LONG | WS__U8_OVERLONG_2 | WS__U8_TWO_CONTS | WS__U8_SURROGATE | WS__U8_TOO_LARGE,
    /* 0xC_..0xF_ lead bytes */
    WS__U8_TOO_SHORT,
    WS__U8_TOO_SHORT,
    WS__U8_TOO_SHORT,
    WS__U8_TOO_SHORT,
};

/* A block is "incomplete" when its last bytes start a sequence that needs bytes beyond it:
 * the last byte >= C0, the one before >= E0, or the one before that >= F0. A saturating
 * subtraction of this vector (per-byte maximum allowed) is non-zero exactly then. */
#define WS__U8_LAST1_MAX 0xbf
#define WS__U8_LAST2_MAX 0xdf
#define WS__U8_LAST3_MAX 0xef

/* The byte two (three) positions back starts a 3-byte (4-byte) sequence when it is >= E0
 * (>= F0); subtracting these with unsigned saturation leaves bit 7 set exactly then. */
#define WS__U8_IS_3RD_SUB (0xe0 - 0x80)
#define WS__U8_IS_4TH_SUB (0xf0 - 0x80)

#endif
