// Package fleet manages environments: it issues the join tokens that bind
// an agent to one of them, redeems them for certificates, decides at every
// TLS handshake whether an agent certificate is still good, and records what
// connected agents say about themselves.
package fleet

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/rsgo/rsgo/controller/internal/pki"
	"github.com/rsgo/rsgo/controller/internal/store"
	"github.com/rsgo/rsgo/shared/jointoken"
	"github.com/rsgo/rsgo/shared/protocol"
)

// DefaultTokenTTL is how long a join token stays valid.
const DefaultTokenTTL = time.Hour

// Errors callers can match.
var (
	ErrInvalidName = errors.New("invalid environment name")
	ErrNameTaken   = errors.New("environment name already taken")
)

// Config configures a Service.
type Config struct {
	Store     *store.Store
	Authority *pki.Authority
	// AdvertiseAddr is the HOST:PORT agents dial; join tokens carry it.
	AdvertiseAddr string
	TokenTTL      time.Duration
	// OnEnrolled is called after an environment got a new certificate, so the
	// session of a superseded certificate can be cut.
	OnEnrolled func(environmentID, serial string)
	Log        *slog.Logger
	Now        func() time.Time
}

// Service implements enrollment and certificate checks.
type Service struct{ cfg Config }

// New validates cfg and fills its defaults.
func New(cfg Config) (*Service, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("fleet: no store")
	case cfg.Authority == nil:
		return nil, errors.New("fleet: no authority")
	case cfg.AdvertiseAddr == "":
		return nil, errors.New("fleet: no advertise address")
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = DefaultTokenTTL
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{cfg: cfg}, nil
}

// Issued is a freshly issued join token.
type Issued struct {
	Token     string    `json:"joinToken"`
	ExpiresAt time.Time `json:"expiresAt"`
	Command   string    `json:"joinCommand"`
}

// CreateEnvironment stores a new environment and its first join token.
func (s *Service) CreateEnvironment(name string) (store.Environment, Issued, error) {
	if !store.IsValidName(name) {
		return store.Environment{}, Issued{}, fmt.Errorf("%w: %q must be 1-63 lowercase letters, digits or '-', not starting or ending with '-'", ErrInvalidName, name)
	}
	env := store.Environment{ID: "env-" + randomHex(6), Name: name, CreatedAt: s.cfg.Now().UTC()}
	rec, issued := s.newToken(env.ID)
	if err := s.cfg.Store.CreateEnvironment(env, rec); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return store.Environment{}, Issued{}, fmt.Errorf("%w: %q", ErrNameTaken, name)
		}
		return store.Environment{}, Issued{}, err
	}
	s.cfg.Log.Info("environment created", "environment", env.ID, "name", name)
	return env, issued, nil
}

// NewJoinToken issues another token for an existing environment, to enroll
// a host again. Enrolling with it revokes the previous certificate.
func (s *Service) NewJoinToken(environmentID string) (Issued, error) {
	rec, issued := s.newToken(environmentID)
	if err := s.cfg.Store.PutJoinToken(rec); err != nil {
		return Issued{}, err
	}
	return issued, nil
}

func (s *Service) newToken(environmentID string) (store.JoinToken, Issued) {
	now := s.cfg.Now().UTC()
	tok := jointoken.Token{
		ID:            randomHex(8),
		Secret:        randomSecret(),
		Addr:          s.cfg.AdvertiseAddr,
		CAFingerprint: s.cfg.Authority.Fingerprint(),
	}
	rec := store.JoinToken{
		ID:            tok.ID,
		EnvironmentID: environmentID,
		SecretHash:    jointoken.HashSecret(tok.Secret),
		CreatedAt:     now,
		ExpiresAt:     now.Add(s.cfg.TokenTTL),
	}
	enc := tok.Encode()
	return rec, Issued{Token: enc, ExpiresAt: rec.ExpiresAt, Command: JoinCommand(enc)}
}

// JoinCommand is the line an operator pastes on the Docker host.
func JoinCommand(token string) string {
	return "rsgo-agent run --state-dir /var/lib/rsgo-agent --token " + token
}

// DeleteEnvironment removes an environment; its certificate is refused from
// now on. The caller cuts a live session.
func (s *Service) DeleteEnvironment(environmentID string) error {
	if err := s.cfg.Store.DeleteEnvironment(environmentID, s.cfg.Now().UTC()); err != nil {
		return err
	}
	s.cfg.Log.Info("environment deleted; its agent certificate is revoked", "environment", environmentID)
	return nil
}

// CheckAgent implements gateway.Verifier.
func (s *Service) CheckAgent(environmentID, serial string) error {
	env, err := s.cfg.Store.Environment(environmentID)
	if errors.Is(err, store.ErrNotFound) {
		if d, derr := s.cfg.Store.Deleted(environmentID); derr == nil {
			return fmt.Errorf("environment %s (%s) was deleted at %s: certificate revoked",
				d.ID, d.Name, d.DeletedAt.Format(time.RFC3339))
		}
		return fmt.Errorf("unknown environment %s", environmentID)
	}
	if err != nil {
		return fmt.Errorf("look up environment %s: %w", environmentID, err)
	}
	if env.CertSerial != serial {
		return fmt.Errorf("certificate %s of environment %s was superseded by a later enrollment", serial, environmentID)
	}
	return nil
}

// Enroll implements gateway.Verifier: it redeems a join token once and signs
// the agent's CSR for the token's environment.
func (s *Service) Enroll(_ context.Context, req protocol.EnrollRequest) (protocol.EnrollResponse, error) {
	tok, err := jointoken.Parse(req.Token)
	if err != nil {
		return protocol.EnrollResponse{}, wireErr(protocol.CodeInvalidToken, "%v", err)
	}
	if tok.CAFingerprint != s.cfg.Authority.Fingerprint() {
		return protocol.EnrollResponse{}, wireErr(protocol.CodeInvalidToken, "join token was not issued by this controller")
	}
	now := s.cfg.Now().UTC()
	var certPEM []byte
	var serial string
	env, err := s.cfg.Store.RedeemJoinToken(tok.ID, func(rec *store.JoinToken, env *store.Environment) error {
		switch {
		case !jointoken.SecretMatches(tok.Secret, rec.SecretHash):
			return wireErr(protocol.CodeInvalidToken, "join token is not valid")
		case rec.UsedAt != nil:
			return wireErr(protocol.CodeTokenUsed, "join token was already used at %s; create a new one with POST /api/environments/%s/join-token",
				rec.UsedAt.Format(time.RFC3339), env.Name)
		case !now.Before(rec.ExpiresAt):
			return wireErr(protocol.CodeTokenExpired, "join token expired at %s; create a new one with POST /api/environments/%s/join-token",
				rec.ExpiresAt.Format(time.RFC3339), env.Name)
		}
		var err error
		certPEM, serial, err = s.cfg.Authority.SignAgent([]byte(req.CSR), env.ID)
		if err != nil {
			return wireErr(protocol.CodeBadRequest, "%v", err)
		}
		rec.UsedAt = &now
		env.CertSerial = serial
		env.EnrolledAt = &now
		return nil
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return protocol.EnrollResponse{}, wireErr(protocol.CodeInvalidToken, "join token is not valid")
	case err != nil:
		return protocol.EnrollResponse{}, err
	}
	if s.cfg.OnEnrolled != nil {
		s.cfg.OnEnrolled(env.ID, serial)
	}
	return protocol.EnrollResponse{
		Certificate:     string(certPEM),
		CA:              string(s.cfg.Authority.CAPEM()),
		EnvironmentID:   env.ID,
		EnvironmentName: env.Name,
	}, nil
}

func wireErr(code, format string, a ...any) *protocol.Error {
	return &protocol.Error{Code: code, Message: fmt.Sprintf(format, a...)}
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails on supported platforms
	return hex.EncodeToString(b)
}

func randomSecret() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
