/* Room map and room structs: hashing is deterministic and spreads homes over cores, the map
 * finds by (hash, name) through growth and removal, name limits are enforced, only the home
 * core gets the home part, and ws_room_unused follows the membership protocol's state. */
#include <stdio.h>
#include <string.h>

#include "../net/room.h"
#include "check.h"

static void map(void)
{
    ws_roommap_t m;
    REQUIRE(ws_room_map_init(&m) == 0);
    enum { R = 3000 };
    static ws_room_t *rooms[R];
    char name[32];
    for (int i = 0; i < R; i++) {
        int n = snprintf(name, sizeof(name), "room-%d", i);
        rooms[i] = ws_room_new(name, (size_t)n, 4, 0);
        REQUIRE(rooms[i]);
        CHECK(ws_room_find(&m, rooms[i]->hash, name, (size_t)n) == NULL);
        CHECK(ws_room_insert(&m, rooms[i]) == 0);
    }
    CHECK_EQ_U(m.count, R);
    CHECK(m.nbuckets >= R);
    for (int i = 0; i < R; i++) {
        int n = snprintf(name, sizeof(name), "room-%d", i);
        CHECK(ws_room_find(&m, ws_room_hash(name, (size_t)n), name, (size_t)n) == rooms[i]);
    }
    /* Same hash, different name: never confused (a forged hash must not match). */
    CHECK(ws_room_find(&m, rooms[5]->hash, "room-6", 6) == NULL);
    for (int i = 0; i < R; i += 2) {
        ws_room_remove(&m, rooms[i]);
        ws_room_free(rooms[i]);
    }
    CHECK_EQ_U(m.count, R / 2);
    for (int i = 0; i < R; i++) {
        int n = snprintf(name, sizeof(name), "room-%d", i);
        ws_room_t *r = ws_room_find(&m, ws_room_hash(name, (size_t)n), name, (size_t)n);
        CHECK((i % 2 == 0) ? r == NULL : r == rooms[i]);
    }
    ws_room_map_free(&m); /* frees the odd rooms (ASan checks) */
}

static void homes(void)
{
    /* Deterministic, and every core is home to a fair share of 4000 names. */
    unsigned count[8] = {0};
    char name[32];
    for (int i = 0; i < 4000; i++) {
        int n = snprintf(name, sizeof(name), "r%d", i);
        uint64_t h = ws_room_hash(name, (size_t)n);
        CHECK(h == ws_room_hash(name, (size_t)n));
        count[ws_room_home(h, 8)]++;
    }
    for (int k = 0; k < 8; k++)
        CHECK(count[k] > 400 && count[k] < 600);
    CHECK_EQ_U(ws_room_home(ws_room_hash("lobby", 5), 1), 0);
}

static void structs(void)
{
    char big[WS_ROOM_MAX + 2];
    memset(big, 'x', sizeof(big));
    CHECK(ws_room_new(big, WS_ROOM_MAX + 1, 2, 0) == NULL);
    CHECK(ws_room_new(big, 0, 2, 0) == NULL);
    ws_room_t *r = ws_room_new(big, WS_ROOM_MAX, 2, 0);
    REQUIRE(r);
    CHECK_EQ_U(r->name_len, WS_ROOM_MAX);
    CHECK(r->name[WS_ROOM_MAX] == '\0');
    ws_room_free(r);

    /* Find a name homed on core 1 of 2 and look at it from both cores. */
    const char *name = NULL;
    static const char *cands[] = {"a", "b", "c", "d", "e", "f", "g", "h"};
    for (size_t i = 0; i < 8 && !name; i++)
        if (ws_room_home(ws_room_hash(cands[i], 1), 2) == 1)
            name = cands[i];
    REQUIRE(name);
    ws_room_t *home = ws_room_new(name, 1, 2, 1);
    ws_room_t *away = ws_room_new(name, 1, 2, 0);
    REQUIRE(home && away);
    CHECK(home->peer != NULL);
    CHECK(away->peer == NULL);
    CHECK(ws_room_unused(home, 1));
    CHECK(ws_room_unused(away, 0));
    /* The away core: registered (JOIN sent) keeps it, so does an unacknowledged LEAVE. */
    away->registered = true;
    CHECK(!ws_room_unused(away, 0));
    away->registered = false;
    away->leaves_pending = 1;
    CHECK(!ws_room_unused(away, 0));
    away->leaves_pending = 0;
    /* The home core: another core's membership keeps it. */
    home->peer[0] = away;
    home->member_cores = 1;
    CHECK(!ws_room_unused(home, 1));
    home->peer[0] = NULL;
    home->member_cores = 0;
    CHECK(ws_room_unused(home, 1));
    ws_room_free(home);
    ws_room_free(away);
}

int main(void)
{
    map();
    homes();
    structs();
    return check_exit_status("test_net_room");
}
