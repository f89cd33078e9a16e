// The gorilla/websocket chat hub (the package's examples/chat pattern), as a peer for
// bench/compare.sh, with rooms by URL path: one hub goroutine per room, a read pump and a
// write pump per client. Every message a member sends goes to every member of its room,
// the sender included, one frame per message; text stays text, binary stays binary. The
// hub is the only writer of each client's send channel, so per-room order is kept. As in
// the example, a client whose send channel is full is dropped by the hub.
package main

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

const (
	sendQueue      = 256 // messages queued per client before the hub drops it (the example's 256)
	maxMessageSize = 16 << 20
	writeWait      = 10 * time.Second
)

type message struct {
	kind int
	data []byte
}

type client struct {
	hub  *hub
	conn *websocket.Conn
	send chan message
}

type hub struct {
	clients    map[*client]bool
	broadcast  chan message
	register   chan *client
	unregister chan *client
}

func newHub() *hub {
	return &hub{
		clients:    make(map[*client]bool),
		broadcast:  make(chan message, 1024),
		register:   make(chan *client),
		unregister: make(chan *client),
	}
}

func (h *hub) run() {
	for {
		select {
		case c := <-h.register:
			h.clients[c] = true
		case c := <-h.unregister:
			if h.clients[c] {
				delete(h.clients, c)
				close(c.send)
			}
		case m := <-h.broadcast:
			for c := range h.clients {
				select {
				case c.send <- m:
				default:
					delete(h.clients, c)
					close(c.send)
				}
			}
		}
	}
}

var (
	hubsMu sync.Mutex
	hubs   = map[string]*hub{}
)

func hubFor(room string) *hub {
	hubsMu.Lock()
	defer hubsMu.Unlock()
	h := hubs[room]
	if h == nil {
		h = newHub()
		hubs[room] = h
		go h.run()
	}
	return h
}

func (c *client) readPump() {
	defer func() {
		c.hub.unregister <- c
		c.conn.Close()
	}()
	c.conn.SetReadLimit(maxMessageSize)
	for {
		kind, data, err := c.conn.ReadMessage()
		if err != nil {
			return
		}
		c.hub.broadcast <- message{kind, data}
	}
}

func (c *client) writePump() {
	defer c.conn.Close()
	for m := range c.send {
		c.conn.SetWriteDeadline(time.Now().Add(writeWait))
		if err := c.conn.WriteMessage(m.kind, m.data); err != nil {
			return
		}
	}
	c.conn.WriteMessage(websocket.CloseMessage, []byte{})
}

var upgrader = websocket.Upgrader{
	ReadBufferSize:  4096,
	WriteBufferSize: 4096,
	CheckOrigin:     func(*http.Request) bool { return true },
}

func serveWs(w http.ResponseWriter, r *http.Request) {
	room, err := url.PathUnescape(strings.TrimPrefix(r.URL.EscapedPath(), "/"))
	if err != nil {
		http.Error(w, "bad room", http.StatusBadRequest)
		return
	}
	if room == "" {
		room = "lobby"
	}
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	c := &client{hub: hubFor(room), conn: conn, send: make(chan message, sendQueue)}
	c.hub.register <- c
	go c.writePump()
	go c.readPump()
}

func main() {
	port := "8080"
	if len(os.Args) > 1 {
		port = os.Args[1]
	}
	http.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	http.HandleFunc("/", serveWs)
	fmt.Printf("go-gorilla listening on :%s\n", port)
	if err := http.ListenAndServe(":"+port, nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
