package protocol

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// Handler answers one request. The returned value becomes the response body;
// an error becomes the response's wire error.
type Handler func(ctx context.Context, req Request) (any, error)

// requestReadTimeout bounds how long a peer may take to send the request
// frame after opening a stream.
const requestReadTimeout = 30 * time.Second

// Serve accepts streams from l (a yamux session) until Accept fails, runs h
// for each one in its own goroutine and waits for those to finish before it
// returns. ctx is passed to every handler and is cancelled by the caller to
// abandon work in flight.
func Serve(ctx context.Context, l net.Listener, h Handler) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		stream, err := l.Accept()
		if err != nil {
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			serveStream(ctx, stream, h)
		}()
	}
}

func serveStream(ctx context.Context, stream net.Conn, h Handler) {
	defer stream.Close()
	stream.SetReadDeadline(time.Now().Add(requestReadTimeout))
	var req Request
	if err := ReadFrame(stream, &req); err != nil {
		Reply(stream, nil, &Error{Code: CodeBadRequest, Message: err.Error()})
		return
	}
	stream.SetReadDeadline(time.Time{})
	body, err := h(ctx, req)
	Reply(stream, body, err)
}

// Invoke sends req on a freshly opened stream and decodes the answer into
// out. The stream is closed when Invoke returns; ctx bounds the whole call.
func Invoke(ctx context.Context, stream net.Conn, req Request, out any) error {
	defer stream.Close()
	if dl, ok := ctx.Deadline(); ok {
		stream.SetDeadline(dl)
	}
	// Closing the stream unblocks a read or write stuck on a cancelled call.
	stop := context.AfterFunc(ctx, func() { stream.Close() })
	defer stop()
	err := Call(stream, req, out)
	if err != nil && ctx.Err() != nil {
		var wire *Error
		if !errors.As(err, &wire) {
			return fmt.Errorf("%s request: %w", req.Type, ctx.Err())
		}
	}
	return err
}
