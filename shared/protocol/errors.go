package protocol

import "errors"

// Error codes that cross the wire. A code never changes meaning.
const (
	CodeBadRequest         = "bad_request"
	CodeUnknownType        = "unknown_type"
	CodeUnsupportedVersion = "unsupported_version"
	CodeInvalidToken       = "invalid_token"
	CodeTokenUsed          = "token_used"
	CodeTokenExpired       = "token_expired"
	CodeEnvironmentGone    = "environment_gone"
	CodeDockerUnavailable  = "docker_unavailable"
	CodeInternal           = "internal"
)

// Error is an error that crossed the wire: a stable code plus a message for
// people.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Is lets errors.Is match on the code alone.
func (e *Error) Is(target error) bool {
	var t *Error
	return errors.As(target, &t) && t.Code == e.Code
}

// AsError converts any error into a wire error, keeping the code of one that
// already is.
func AsError(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Code: CodeInternal, Message: err.Error()}
}
