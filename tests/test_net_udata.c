/* user_data encoding: round trips at the field limits, kinds never collide with indices or
 * generations, and a generation bump makes an old user_data stale. */
#include "../net/udata.h"
#include "check.h"

int main(void)
{
    static const uint32_t idx[] = {0, 1, 12345, 0x7fffffffu, 0xffffffffu};
    static const uint32_t gen[] = {0, 1, 0x123456, WS_UD_GEN_MASK, WS_UD_GEN_MASK + 1};
    for (unsigned k = 1; k < WS_UD_KIND_MAX; k++) {
        for (size_t i = 0; i < sizeof(idx) / sizeof(idx[0]); i++) {
            for (size_t g = 0; g < sizeof(gen) / sizeof(gen[0]); g++) {
                uint64_t ud = ws_ud_make(k, idx[i], gen[g]);
                CHECK_EQ_U(ws_ud_kind(ud), k);
                CHECK_EQ_U(ws_ud_idx(ud), idx[i]);
                CHECK_EQ_U(ws_ud_gen(ud), gen[g] & WS_UD_GEN_MASK);
                CHECK(ws_ud_gen_eq(ud, gen[g]));
                CHECK(!ws_ud_gen_eq(ud, gen[g] + 1));
                CHECK(ud != 0);
            }
        }
    }
    /* A generation wraps inside its field instead of spilling into the kind. */
    uint64_t ud = ws_ud_make(WS_UD_RECV, 7, WS_UD_GEN_MASK + 5);
    CHECK_EQ_U(ws_ud_kind(ud), WS_UD_RECV);
    CHECK_EQ_U(ws_ud_gen(ud), 4);
    /* The kind is the top byte, so kinds sort user_data values into disjoint ranges. */
    CHECK(ws_ud_make(WS_UD_SEND, 0, 0) > ws_ud_make(WS_UD_RECV, 0xffffffffu, WS_UD_GEN_MASK));
    return check_exit_status("test_net_udata");
}
