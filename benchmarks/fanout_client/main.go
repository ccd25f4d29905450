// Command fanout-client is the client fleet of benchmarks/fanout.py: thousands of WebSocket
// clients of the notifier in one process, costing the machine as little CPU as possible (the
// benchmark shares its cores with the service under test; real clients live elsewhere).
//
// It does what LeanWebSocket and client_main in fanout.py do. fanout.py drives it over stdin and
// stdout, one command a line, one JSON line an answer:
//
//	grow N        open connections until N are open    -> {"connected": n, "failed": f}
//	cpu           own CPU seconds (user + system)      -> {"cpu": s}
//	collect PATH  write the receipts since the last collect to PATH, then forget them
//	              -> {"count": n, "disconnected": d, "cpu": s}
//	stop          close every connection and exit      -> {"stopped": true}
//
// The receipts file holds count little-endian uint32 sequence numbers followed by count
// little-endian float64 receipt times (unix seconds): two flat columns Python reads with
// array.frombytes, without a loop per receipt.
//
// Standard library only, so it builds offline.
package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	connectBatch   = 250              // concurrent dials, as fanout.py's CONNECT_BATCH
	readyTimeout   = 30 * time.Second // handshake + subscribe confirmation
	readBufferSize = 4096             // per connection; grows only for a frame that does not fit

	opText  = 0x1
	opClose = 0x8
	opPing  = 0x9
	opPong  = 0xA
)

var (
	subscribeFrame   = clientFrame(nil, opText, []byte(`{"action":"subscribe","id":"all","filter":{}}`))
	slugMarker       = []byte(`"slug":"b`) // the benchmark's slugs are "b" + 9-digit sequence
	subscribedMarker = []byte(`"subscribed"`)
	errClosed        = errors.New("closed by the server")
)

// receipt is one event frame received by one client.
type receipt struct {
	sequence uint32
	at       float64
}

// client is one WebSocket connection. Its receipts have a lock of their own so that the
// connections never contend with each other; only collect takes every lock, one at a time.
type client struct {
	conn     net.Conn
	mu       sync.Mutex
	receipts []receipt
}

type fleet struct {
	address      string
	clients      []*client // touched only by the command loop
	disconnected atomic.Int64
	stopping     atomic.Bool
}

// clientFrame appends a masked frame to out. Client frames must be masked; an all-zero mask
// leaves the payload as it is, so there is nothing to XOR. Payloads here stay under 64 KiB.
func clientFrame(out []byte, opcode byte, payload []byte) []byte {
	if len(payload) < 126 {
		out = append(out, 0x80|opcode, 0x80|byte(len(payload)))
	} else {
		out = append(out, 0x80|opcode, 0x80|126, byte(len(payload)>>8), byte(len(payload)))
	}
	out = append(out, 0, 0, 0, 0)
	return append(out, payload...)
}

func unixSeconds(t time.Time) float64 {
	return float64(t.UnixNano()) / 1e9
}

// open dials one client and returns once the notifier confirmed its subscription; the
// connection's goroutine then keeps reading until the connection ends.
func (f *fleet) open() (*client, error) {
	conn, err := net.DialTimeout("tcp", f.address, readyTimeout)
	if err != nil {
		return nil, err
	}
	c := &client{conn: conn}
	ready := make(chan error, 1)
	go f.serve(c, ready)
	if err := <-ready; err != nil {
		return nil, err
	}
	return c, nil
}

// handshake sends the HTTP upgrade and reads the response into buf; it returns how many bytes
// of buf are filled and where the frames after the response start.
func handshake(conn net.Conn, buf []byte) (filled, start int, err error) {
	var nonce [16]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return 0, 0, err
	}
	request := "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + base64.StdEncoding.EncodeToString(nonce[:]) + "\r\n" +
		"Sec-WebSocket-Version: 13\r\n\r\n"
	if _, err := conn.Write([]byte(request)); err != nil {
		return 0, 0, err
	}
	for {
		if end := bytes.Index(buf[:filled], []byte("\r\n\r\n")); end >= 0 {
			if !bytes.HasPrefix(buf, []byte("HTTP/1.1 101")) {
				line, _, _ := bytes.Cut(buf[:end], []byte("\r\n"))
				return 0, 0, fmt.Errorf("upgrade refused: %s", line)
			}
			return filled, end + 4, nil
		}
		if filled == len(buf) {
			return 0, 0, errors.New("upgrade response too long")
		}
		n, err := conn.Read(buf[filled:])
		if err != nil {
			return 0, 0, err
		}
		filled += n
	}
}

// serve runs one connection: handshake, subscribe, then frames until the connection ends. It
// reports the outcome of the subscription on ready exactly once.
func (f *fleet) serve(c *client, ready chan<- error) {
	subscribed := false
	end := func(err error) {
		c.conn.Close()
		if !subscribed {
			ready <- err
		} else if !f.stopping.Load() {
			f.disconnected.Add(1) // each client counts once: this goroutine ends here
		}
	}
	buf := make([]byte, readBufferSize)
	var out []byte // reused for pongs
	c.conn.SetDeadline(time.Now().Add(readyTimeout))
	filled, offset, err := handshake(c.conn, buf)
	if err != nil {
		end(err)
		return
	}
	now := unixSeconds(time.Now())
	if _, err := c.conn.Write(subscribeFrame); err != nil {
		end(err)
		return
	}
	for {
		// Every complete frame in buf[offset:filled]; a partial one waits for the next read.
		for filled-offset >= 2 {
			first, second := buf[offset], buf[offset+1]
			length, header := uint64(second&0x7F), 2
			switch length {
			case 126:
				if filled-offset < 4 {
					goto incomplete
				}
				length, header = uint64(binary.BigEndian.Uint16(buf[offset+2:])), 4
			case 127:
				if filled-offset < 10 {
					goto incomplete
				}
				length, header = binary.BigEndian.Uint64(buf[offset+2:]), 10
			}
			// Servers never mask their frames (RFC 6455 5.1), so there is no mask to skip.
			if length > math.MaxInt32 {
				end(errors.New("frame too large"))
				return
			}
			frameEnd := offset + header + int(length)
			if frameEnd > filled {
				if frameEnd-offset > len(buf) { // make room for the whole frame
					bigger := make([]byte, frameEnd-offset)
					filled = copy(bigger, buf[offset:filled])
					buf, offset = bigger, 0
				}
				goto incomplete
			}
			payload := buf[offset+header : frameEnd]
			switch first & 0x0F {
			case opText:
				if sequence, ok := benchSequence(payload); ok {
					c.mu.Lock()
					c.receipts = append(c.receipts, receipt{sequence, now})
					c.mu.Unlock()
				} else if !subscribed && bytes.Contains(payload, subscribedMarker) {
					subscribed = true
					c.conn.SetDeadline(time.Time{})
					ready <- nil
				}
			case opPing:
				out = clientFrame(out[:0], opPong, payload)
				if _, err := c.conn.Write(out); err != nil {
					end(err)
					return
				}
			case opClose:
				end(errClosed)
				return
			}
			offset = frameEnd
		}
	incomplete:
		filled = copy(buf, buf[offset:filled])
		offset = 0
		n, err := c.conn.Read(buf[filled:])
		if err != nil {
			end(err)
			return
		}
		// The receipt time is when the read returned, before any parsing.
		now = unixSeconds(time.Now())
		filled += n
	}
}

// benchSequence finds `"slug":"b` + 9 digits + `"` in an event frame, as fanout.py's
// SLUG_SEQUENCE does, without a regular expression or an allocation.
func benchSequence(payload []byte) (uint32, bool) {
	at := bytes.Index(payload, slugMarker)
	if at < 0 {
		return 0, false
	}
	digits := payload[at+len(slugMarker):]
	if len(digits) < 10 || digits[9] != '"' {
		return 0, false
	}
	var sequence uint32
	for _, digit := range digits[:9] {
		if digit < '0' || digit > '9' {
			return 0, false
		}
		sequence = sequence*10 + uint32(digit-'0')
	}
	return sequence, true
}

// grow opens clients, connectBatch at a time, until want are open; it gives up once more than
// want/10 dials failed, as client_main does.
func (f *fleet) grow(want int) (connected, failed int) {
	for len(f.clients) < want && failed <= want/10 {
		batch := min(connectBatch, want-len(f.clients))
		var mu sync.Mutex
		var wg sync.WaitGroup
		for range batch {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := f.open()
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					failed++
					return
				}
				f.clients = append(f.clients, c)
			}()
		}
		wg.Wait()
	}
	return len(f.clients), failed
}

// collect writes the receipts since the last collect to path and forgets them.
func (f *fleet) collect(path string) (int, error) {
	var all []receipt
	for _, c := range f.clients {
		c.mu.Lock()
		all = append(all, c.receipts...)
		c.receipts = c.receipts[:0]
		c.mu.Unlock()
	}
	data := make([]byte, 0, 12*len(all))
	for _, r := range all {
		data = binary.LittleEndian.AppendUint32(data, r.sequence)
	}
	for _, r := range all {
		data = binary.LittleEndian.AppendUint64(data, math.Float64bits(r.at))
	}
	return len(all), os.WriteFile(path, data, 0o644)
}

func (f *fleet) stop() {
	f.stopping.Store(true)
	for _, c := range f.clients {
		c.conn.Close()
	}
}

func cpuSeconds() float64 {
	var usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage); err != nil {
		return math.NaN()
	}
	return float64(usage.Utime.Sec+usage.Stime.Sec) + float64(usage.Utime.Usec+usage.Stime.Usec)/1e6
}

// answer runs one command line and returns its JSON answer, and whether to exit.
func (f *fleet) answer(line string) (map[string]any, bool) {
	command, argument, _ := strings.Cut(strings.TrimSpace(line), " ")
	switch command {
	case "grow":
		want, err := strconv.Atoi(argument)
		if err != nil {
			return map[string]any{"error": "grow needs a count: " + err.Error()}, false
		}
		connected, failed := f.grow(want)
		return map[string]any{"connected": connected, "failed": failed}, false
	case "cpu":
		return map[string]any{"cpu": cpuSeconds()}, false
	case "collect":
		count, err := f.collect(argument)
		if err != nil {
			return map[string]any{"error": err.Error()}, false
		}
		return map[string]any{
			"count": count, "disconnected": f.disconnected.Load(), "cpu": cpuSeconds(),
		}, false
	case "stop":
		f.stop()
		return map[string]any{"stopped": true}, true
	}
	return map[string]any{"error": fmt.Sprintf("unknown command %q", command)}, false
}

func main() {
	port := flag.Int("port", 0, "the notifier's port on 127.0.0.1")
	flag.Parse()
	if *port <= 0 {
		fmt.Fprintln(os.Stderr, "usage: fanout-client -port PORT")
		os.Exit(2)
	}
	// Go raises the soft open-file limit to the hard one by itself, so thousands of sockets fit.
	f := &fleet{address: net.JoinHostPort("127.0.0.1", strconv.Itoa(*port))}
	lines := bufio.NewScanner(os.Stdin)
	answers := json.NewEncoder(os.Stdout) // os.Stdout is unbuffered: each answer goes out at once
	for lines.Scan() {
		reply, exit := f.answer(lines.Text())
		if err := answers.Encode(reply); err != nil || exit {
			return
		}
	}
	f.stop() // stdin closed: the benchmark is gone
}
