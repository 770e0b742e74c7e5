package protocol

import (
	"encoding/json"
	"fmt"
	"io"
)

// Call writes req on rw, reads the Response and decodes its body into out
// (when out is not nil). A Response that carries an error returns it as *Error.
func Call(rw io.ReadWriter, req Request, out any) error {
	if err := WriteFrame(rw, req); err != nil {
		return err
	}
	var resp Response
	if err := ReadFrame(rw, &resp); err != nil {
		return err
	}
	if resp.Error != nil {
		return resp.Error
	}
	if out != nil && len(resp.Body) > 0 {
		if err := json.Unmarshal(resp.Body, out); err != nil {
			return fmt.Errorf("protocol: decode %s response: %w", req.Type, err)
		}
	}
	return nil
}

// Reply writes the answer to a request: body on success, the error otherwise.
func Reply(w io.Writer, body any, err error) error {
	if err != nil {
		return WriteFrame(w, Response{Error: AsError(err)})
	}
	raw, merr := json.Marshal(body)
	if merr != nil {
		return WriteFrame(w, Response{Error: AsError(merr)})
	}
	return WriteFrame(w, Response{Body: raw})
}
