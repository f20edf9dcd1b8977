// Package secrets keeps cluster credentials sealed with AES-GCM in a
// JetStream key-value bucket, apart from the event stream: events, logs and
// API responses only ever say whether a cluster has credentials.
package secrets

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/zdm-io/zdm/domain"
)

// Bucket is where KV-backed stores keep what they seal.
type Bucket interface {
	Put(ctx context.Context, key string, value []byte) error
	Get(ctx context.Context, key string) ([]byte, error)
	Delete(ctx context.Context, key string) error
}

// Store seals credentials before they reach the bucket.
type Store struct {
	bucket   Bucket
	aead     cipher.AEAD
	notFound error
}

// New returns a store sealing with a 32-byte key. notFound is the error the
// bucket returns for a missing key.
func New(bucket Bucket, key []byte, notFound error) (*Store, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	return &Store{bucket: bucket, aead: aead, notFound: notFound}, nil
}

// Put seals and stores c for a cluster.
func (s *Store) Put(ctx context.Context, clusterID string, c domain.Credentials) error {
	plain, err := json.Marshal(c)
	if err != nil {
		return err
	}
	// The cluster ID is bound in as associated data, so a sealed value
	// copied to another key does not open.
	sealed, err := s.seal(plain, clusterID)
	if err != nil {
		return err
	}
	return s.bucket.Put(ctx, clusterID, sealed)
}

// Get returns a cluster's credentials; none stored is no credentials.
func (s *Store) Get(ctx context.Context, clusterID string) (domain.Credentials, error) {
	sealed, err := s.bucket.Get(ctx, clusterID)
	if errors.Is(err, s.notFound) {
		return domain.Credentials{}, nil
	}
	if err != nil {
		return domain.Credentials{}, err
	}
	plain, err := s.open(sealed, clusterID)
	if err != nil {
		return domain.Credentials{}, fmt.Errorf("credentials of %s %w", clusterID, err)
	}
	var c domain.Credentials
	return c, json.Unmarshal(plain, &c)
}

// valueData marks the associated data of Seal's values apart from the
// cluster IDs Put binds in, so that neither opens as the other.
const valueData = "value\x00"

// Seal seals a value kept outside the bucket (a password in a journal
// entry), bound to about: it opens only with the same about.
func (s *Store) Seal(about string, plain []byte) ([]byte, error) {
	return s.seal(plain, valueData+about)
}

// Open opens what Seal sealed with the same about.
func (s *Store) Open(about string, sealed []byte) ([]byte, error) {
	plain, err := s.open(sealed, valueData+about)
	if err != nil {
		return nil, fmt.Errorf("sealed value of %s %w", about, err)
	}
	return plain, nil
}

func (s *Store) seal(plain []byte, data string) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return s.aead.Seal(nonce, nonce, plain, []byte(data)), nil
}

func (s *Store) open(sealed []byte, data string) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n {
		return nil, errDoesNotOpen
	}
	plain, err := s.aead.Open(nil, sealed[:n], sealed[n:], []byte(data))
	if err != nil {
		return nil, errDoesNotOpen
	}
	return plain, nil
}

// checkKey names a value sealed by the first zdmd on a NATS, which every
// other one must open.
const checkKey = "_key_check"

var errDoesNotOpen = errors.New("do not open with this secret key")

// ErrKeyDiffers means this zdmd's secret key is not the one the
// credentials were sealed with.
var ErrKeyDiffers = errors.New("the secret key differs from the one the stored credentials were sealed with: " +
	"every zdmd sharing a NATS needs the same ZDM_SECRET_KEY (or a copy of the first one's DATA_DIR/secret.key)")

// CheckKey proves that the key opens what the other instances sealed,
// sealing a check value if none is stored yet: an instance with another
// key would fail later, on a cluster's credentials, in the middle of a
// migration.
func (s *Store) CheckKey(ctx context.Context) error {
	c, err := s.Get(ctx, checkKey)
	switch {
	case errors.Is(err, errDoesNotOpen):
		return ErrKeyDiffers
	case err != nil:
		return fmt.Errorf("check the secret key: %w", err)
	case c.Username == "":
		return s.Put(ctx, checkKey, domain.Credentials{Username: "zdm"})
	}
	return nil
}

// Delete erases a cluster's credentials.
func (s *Store) Delete(ctx context.Context, clusterID string) error {
	return s.bucket.Delete(ctx, clusterID)
}

// LoadKey returns the sealing key: from env (base64 of 32 bytes) when set,
// else from keyFile, which is created with a new random key on first use.
func LoadKey(env, keyFile string) ([]byte, error) {
	if env != "" {
		k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(env))
		if err != nil || len(k) != 32 {
			return nil, errors.New("ZDM_SECRET_KEY must be the base64 of 32 bytes")
		}
		return k, nil
	}
	if data, err := os.ReadFile(keyFile); err == nil {
		k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(data)))
		if err != nil || len(k) != 32 {
			return nil, fmt.Errorf("%s does not hold the base64 of 32 bytes", keyFile)
		}
		return k, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(keyFile), 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(k)+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("write secret key: %w", err)
	}
	return k, nil
}
