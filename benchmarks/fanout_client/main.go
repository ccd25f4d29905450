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
// Standard library only, so it builds offline; Linux only (epoll), as the benchmark is.
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
	"io"
	"math"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

const (
	connectBatch   = 250              // concurrent dials, as fanout.py's CONNECT_BATCH
	readyTimeout   = 30 * time.Second // handshake + subscribe confirmation
	readBufferSize = 4096             // per connection; grows only for a frame that does not fit
	waitMillis     = 100              // epoll_wait's timeout: never block far from Go's code

	opText  = 0x1
	opClose = 0x8
	opPing  = 0x9
	opPong  = 0xA
)

var (
	subscribeFrame   []byte                // set in main: everything, per event or in batch windows (-batch-ms)
	slugMarker       = []byte(`"slug":"b`) // the benchmark's slugs are "b" + 9-digit sequence
	subscribedMarker = []byte(`"subscribed"`)
	errClosed        = errors.New("closed by the server")
)

// receipt is one event frame received by one client.
type receipt struct {
	sequence uint32
	at       float64
}

// client is one WebSocket connection: its socket and the bytes of a frame not read whole yet.
type client struct {
	fd         int       // the socket the event loop reads, once subscribed
	send       io.Writer // for pongs: the net.Conn while subscribing, then the socket itself
	buf        []byte
	filled     int
	subscribed bool
	closed     bool
	out        []byte // reused for pongs
}

// fleet holds the clients. Once subscribed, every client is read by one goroutine waiting on one
// epoll set, as wrk does. Measured with 300 clients at 20 events/s (share of one core): a
// goroutine per connection 5.7-6.6 % (the scheduler woke a thread for almost every frame), the
// Python client 5.0 %, this loop 4.0 %; what remains is mostly the kernel's reads.
type fleet struct {
	address      string
	epoll        int
	mu           sync.RWMutex // clients grows while the loop reads it
	clients      []*client    // indexed by the number stored in each socket's epoll event
	receiptsMu   sync.Mutex
	receipts     []receipt
	disconnected atomic.Int64
	stopping     atomic.Bool
}

// socket writes to a raw non-blocking socket; a pong is small enough never to find it full.
type socket int

func (s socket) Write(data []byte) (int, error) { return syscall.Write(int(s), data) }

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

// open dials one client, subscribes it and, once the notifier confirmed the subscription,
// hands its socket to the event loop. Blocking reads with a deadline are the simple way to do
// the handshake; only the steady state needs to be cheap.
func (f *fleet) open() error {
	conn, err := net.DialTimeout("tcp", f.address, readyTimeout)
	if err != nil {
		return err
	}
	// The event loop reads a duplicate of the socket: closing this one (which also takes it out
	// of Go's own poller) leaves the connection open.
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(readyTimeout))
	c := &client{send: conn, buf: make([]byte, readBufferSize)}
	filled, start, err := handshake(conn, c.buf)
	if err != nil {
		return err
	}
	c.filled = copy(c.buf, c.buf[start:filled])
	now := unixSeconds(time.Now())
	if _, err := conn.Write(subscribeFrame); err != nil {
		return err
	}
	for {
		if err := f.consume(c, now); err != nil {
			return err
		}
		if c.subscribed {
			break
		}
		n, err := conn.Read(c.buf[c.filled:])
		if err != nil {
			return err
		}
		now = unixSeconds(time.Now())
		c.filled += n
	}
	raw, err := conn.(*net.TCPConn).SyscallConn()
	if err != nil {
		return err
	}
	dupErr := raw.Control(func(fd uintptr) { c.fd, err = syscall.Dup(int(fd)) })
	if err = errors.Join(dupErr, err); err != nil {
		return err
	}
	c.send = socket(c.fd) // the duplicate shares Go's O_NONBLOCK: reads never block the loop
	f.mu.Lock()
	index := len(f.clients)
	f.clients = append(f.clients, c)
	f.mu.Unlock()
	// Level-triggered: bytes that arrived before this point are reported at once.
	event := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: int32(index)}
	if err := syscall.EpollCtl(f.epoll, syscall.EPOLL_CTL_ADD, c.fd, &event); err != nil {
		c.closed = true // never read: the loop ignores it
		syscall.Close(c.fd)
		return err
	}
	return nil
}

// loop reads every subscribed client: one read per ready socket, the receipt time taken when
// the read returned, before parsing. It waits in a raw epoll_wait, as a C or asyncio event loop
// does: made as an ordinary system call, each wait had Go's scheduler hand the processor over
// and wake threads (futex and sleep calls outnumbered the reads). Go's preemption signal
// interrupts the wait (EINTR) when the runtime needs this goroutine to stop, for the garbage
// collector for instance, and the timeout bounds the wait anyway.
func (f *fleet) loop() {
	events := make([]syscall.EpollEvent, 512)
	for {
		ready, _, errno := syscall.RawSyscall6(syscall.SYS_EPOLL_WAIT, uintptr(f.epoll),
			uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), waitMillis, 0, 0)
		if errno == syscall.EINTR {
			// Most likely Go's preemption signal: yield here, since the raw call is not a
			// point where the runtime can stop this goroutine.
			runtime.Gosched()
			continue
		}
		if errno != 0 {
			fmt.Fprintln(os.Stderr, "epoll_wait:", errno)
			os.Exit(1)
		}
		f.read(events[:ready])
	}
}

func (f *fleet) read(events []syscall.EpollEvent) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	for _, event := range events {
		c := f.clients[event.Fd]
		if c.closed {
			continue
		}
		n, err := syscall.Read(c.fd, c.buf[c.filled:])
		if err == syscall.EAGAIN {
			continue
		}
		now := unixSeconds(time.Now())
		if n <= 0 || err != nil {
			f.drop(c)
			continue
		}
		c.filled += n
		if f.consume(c, now) != nil {
			f.drop(c)
		}
	}
}

// drop closes a client the server closed or lost; each counts once.
func (f *fleet) drop(c *client) {
	c.closed = true
	syscall.EpollCtl(f.epoll, syscall.EPOLL_CTL_DEL, c.fd, nil)
	syscall.Close(c.fd)
	if !f.stopping.Load() {
		f.disconnected.Add(1)
	}
}

// consume handles every complete frame in c.buf[:c.filled] and keeps a partial one at the
// start of c.buf for the next read, growing c.buf only for a frame that cannot fit.
func (f *fleet) consume(c *client, now float64) error {
	buf, offset, filled := c.buf, 0, c.filled
	defer func() { c.buf, c.filled = buf, copy(buf, buf[offset:filled]) }()
	for filled-offset >= 2 {
		first, second := buf[offset], buf[offset+1]
		length, header := uint64(second&0x7F), 2
		switch length {
		case 126:
			if filled-offset < 4 {
				return nil
			}
			length, header = uint64(binary.BigEndian.Uint16(buf[offset+2:])), 4
		case 127:
			if filled-offset < 10 {
				return nil
			}
			length, header = binary.BigEndian.Uint64(buf[offset+2:]), 10
		}
		// Servers never mask their frames (RFC 6455 5.1), so there is no mask to skip.
		if length > math.MaxInt32 {
			return errors.New("frame too large")
		}
		frameEnd := offset + header + int(length)
		if frameEnd > filled {
			if frameEnd-offset > len(buf) { // make room for the whole frame
				bigger := make([]byte, frameEnd-offset)
				filled = copy(bigger, buf[offset:filled])
				buf, offset = bigger, 0
			}
			return nil
		}
		payload := buf[offset+header : frameEnd]
		switch first & 0x0F {
		case opText:
			// An "event" frame carries one event, an "events" frame (batch_ms) several.
			if sequence, rest, ok := benchSequence(payload); ok {
				f.receiptsMu.Lock()
				for ok {
					f.receipts = append(f.receipts, receipt{sequence, now})
					sequence, rest, ok = benchSequence(rest)
				}
				f.receiptsMu.Unlock()
			} else if !c.subscribed && bytes.Contains(payload, subscribedMarker) {
				c.subscribed = true
			}
		case opPing:
			c.out = clientFrame(c.out[:0], opPong, payload)
			if _, err := c.send.Write(c.out); err != nil {
				return err
			}
		case opClose:
			return errClosed
		}
		offset = frameEnd
	}
	return nil
}

// benchSequence finds the first `"slug":"b` + 9 digits + `"` in a frame, as fanout.py's
// SLUG_SEQUENCE does, without a regular expression or an allocation; and what follows it.
func benchSequence(payload []byte) (uint32, []byte, bool) {
	at := bytes.Index(payload, slugMarker)
	if at < 0 {
		return 0, nil, false
	}
	digits := payload[at+len(slugMarker):]
	if len(digits) < 10 || digits[9] != '"' {
		return 0, nil, false
	}
	var sequence uint32
	for _, digit := range digits[:9] {
		if digit < '0' || digit > '9' {
			return 0, nil, false
		}
		sequence = sequence*10 + uint32(digit-'0')
	}
	return sequence, digits[10:], true
}

// grow opens clients, connectBatch at a time, until want are open; it gives up once more than
// want/10 dials failed, as client_main does.
func (f *fleet) grow(want int) (connected, failed int) {
	for f.count() < want && failed <= want/10 {
		var lost atomic.Int64
		var wg sync.WaitGroup
		for range min(connectBatch, want-f.count()) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if f.open() != nil {
					lost.Add(1)
				}
			}()
		}
		wg.Wait()
		failed += int(lost.Load())
	}
	return f.count(), failed
}

func (f *fleet) count() int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return len(f.clients)
}

// collect writes the receipts since the last collect to path and forgets them.
func (f *fleet) collect(path string) (int, error) {
	f.receiptsMu.Lock()
	all := f.receipts
	f.receipts = make([]receipt, 0, cap(all))
	f.receiptsMu.Unlock()
	data := make([]byte, 0, 12*len(all))
	for _, r := range all {
		data = binary.LittleEndian.AppendUint32(data, r.sequence)
	}
	for _, r := range all {
		data = binary.LittleEndian.AppendUint64(data, math.Float64bits(r.at))
	}
	return len(all), os.WriteFile(path, data, 0o644)
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
		// Exiting closes every socket; the loop may be reading them, so leave that to the kernel.
		f.stopping.Store(true)
		return map[string]any{"stopped": true}, true
	}
	return map[string]any{"error": fmt.Sprintf("unknown command %q", command)}, false
}

func main() {
	port := flag.Int("port", 0, "the notifier's port on 127.0.0.1")
	batchMillis := flag.Int("batch-ms", 0, "subscribe with this batch_ms (0: a frame per event)")
	flag.Parse()
	subscribeFrame = clientFrame(nil, opText, []byte(fmt.Sprintf(
		`{"action":"subscribe","id":"all","filter":{},"batch_ms":%d}`, *batchMillis)))
	if *port <= 0 {
		fmt.Fprintln(os.Stderr, "usage: fanout-client -port PORT")
		os.Exit(2)
	}
	// Go raises the soft open-file limit to the hard one by itself, so thousands of sockets fit.
	// The event loop keeps one processor busy in its wait; the commands and the dials need
	// another, even on a one-core machine.
	runtime.GOMAXPROCS(max(2, runtime.GOMAXPROCS(0)))
	epoll, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err == nil {
		err = syscall.SetNonblock(epoll, true)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "epoll_create1:", err)
		os.Exit(1)
	}
	f := &fleet{address: net.JoinHostPort("127.0.0.1", strconv.Itoa(*port)), epoll: epoll}
	go f.loop()
	lines := bufio.NewScanner(os.Stdin)
	answers := json.NewEncoder(os.Stdout) // os.Stdout is unbuffered: each answer goes out at once
	for lines.Scan() {
		reply, exit := f.answer(lines.Text())
		if err := answers.Encode(reply); err != nil || exit {
			return
		}
	}
	// stdin closed: the benchmark is gone, and exiting closes every socket.
}
