/* Baseline loops the microbenchmarks measure SIMD code against. CMake compiles this file with
 * auto-vectorization off, so each loop stands for what its name claims. Not for production. */
#include <stdint.h>
#include <string.h>

#include "uringws/mask.h"
#include "uringws/utf8.h"

void ws_mask_baseline_bytes(uint8_t *p, size_t n, const uint8_t key[4], uint64_t offset)
{
    for (size_t i = 0; i < n; i++)
        p[i] ^= key[(offset + i) & 3];
}

/* The uWebSockets approach: XOR eight bytes at a time with the key repeated twice. */
void ws_mask_baseline_word(uint8_t *p, size_t n, const uint8_t key[4], uint64_t offset)
{
    uint8_t rot[8];
    for (int i = 0; i < 8; i++)
        rot[i] = key[(offset + i) & 3];
    uint64_t k;
    memcpy(&k, rot, 8);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        w ^= k;
        memcpy(p + i, &w, 8);
    }
    for (; i < n; i++)
        p[i] ^= rot[i & 7];
}

/* A plain decoder: one code point per step, with the RFC 3629 range checks. */
bool ws_utf8_valid_baseline(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        uint32_t cp, min;
        size_t len;
        if ((c & 0xe0) == 0xc0) {
            cp = c & 0x1f, len = 2, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            cp = c & 0x0f, len = 3, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            cp = c & 0x07, len = 4, min = 0x10000;
        } else {
            return false;
        }
        if (n - i < len)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += len;
    }
    return true;
}
