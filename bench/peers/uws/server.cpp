/*
 * uWebSockets broadcast server with rooms, as a peer for bench/compare.sh (built by build.sh
 * against a uWebSockets checkout given as UWS_DIR; no uWebSockets source lives here).
 *
 * ws://host:PORT/<room>: each connection subscribes to the topic named by its
 * percent-decoded path ("/" is "lobby"); every message is published with
 * app.publish(room, message, opCode), which (unlike ws->publish) includes the sender.
 * uWS pub/sub keeps per-topic order. A member past 4 MiB of backpressure is closed, as
 * uringws closes slow consumers at its default --max-queue 4m (uWS would otherwise drop
 * messages silently).
 * Usage: uws-broadcast PORT
 */
#include "App.h"

#include <cstdlib>
#include <iostream>
#include <string>

struct PerSocketData {
    std::string room;
};

static std::string room_of(std::string_view url) {
    if (!url.empty() && url[0] == '/') url.remove_prefix(1);
    std::string out;
    for (size_t i = 0; i < url.size(); i++) {
        if (url[i] == '%' && i + 2 < url.size() && std::isxdigit((unsigned char)url[i + 1]) &&
            std::isxdigit((unsigned char)url[i + 2])) {
            out += (char)std::stoi(std::string(url.substr(i + 1, 2)), nullptr, 16);
            i += 2;
        } else {
            out += url[i];
        }
    }
    return out.empty() ? "lobby" : out;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        std::cerr << "usage: " << argv[0] << " PORT" << std::endl;
        return 2;
    }
    int port = std::atoi(argv[1]);
    uWS::App *app = new uWS::App();
    app->get("/healthz", [](auto *res, auto *) { res->end("ok\n"); });
    app->ws<PerSocketData>("/*", {
        .compression = uWS::DISABLED,
        .maxPayloadLength = 16 * 1024 * 1024,
        .idleTimeout = 0,
        .maxBackpressure = 4 * 1024 * 1024,
        .closeOnBackpressureLimit = true,
        .resetIdleTimeoutOnSend = false,
        .sendPingsAutomatically = false,
        .upgrade = [](auto *res, auto *req, auto *context) {
            res->template upgrade<PerSocketData>({.room = room_of(req->getUrl())},
                req->getHeader("sec-websocket-key"), req->getHeader("sec-websocket-protocol"),
                req->getHeader("sec-websocket-extensions"), context);
        },
        .open = [](auto *ws) { ws->subscribe(ws->getUserData()->room); },
        .message = [app](auto *ws, std::string_view message, uWS::OpCode opCode) {
            app->publish(ws->getUserData()->room, message, opCode);
        },
    }).listen(port, [port](auto *listen_socket) {
        if (listen_socket) {
            std::cout << "uws listening on :" << port << std::endl;
        } else {
            std::cerr << "uws: cannot listen on " << port << std::endl;
            std::exit(1);
        }
    });
    app->run();
    delete app;
    return 0;
}
