/* Listening sockets: one SO_REUSEPORT TCP listener per core on the configured address (all
 * addresses by default: [::] dual stack, falling back to 0.0.0.0 without IPv6). */
#ifndef URINGWS_NET_LISTENER_H
#define URINGWS_NET_LISTENER_H

#include <stdint.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "uringws/server.h"

/* Opens, binds and listens. *port is the port to bind (0: any); on success it holds the bound
 * port, so later listeners of the same group bind the same one. `first` (the first listener
 * of the server) also checks that no other socket holds the port, reuseport or not.
 * Returns the fd or -errno (-EADDRINUSE when the port is taken). */
int ws_listener_open(const ws_server_config_t *cfg, uint16_t *port, bool first);

/* Formats the listener's local address as "host:port" or "[v6]:port". */
void ws_listener_describe(int fd, char *out, size_t cap);

/* Parses an IPv4 or IPv6 literal (optionally in brackets) into ss. Returns 0 or -EINVAL. */
int ws_listener_parse_addr(const char *text, uint16_t port, struct sockaddr_storage *ss,
                           socklen_t *len);

#endif
