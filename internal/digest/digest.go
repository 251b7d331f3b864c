// Package digest computes the SHA-256 checksums (lowercase hex) that manifests, uploads and
// registered model versions are identified and checked by.
package digest

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
)

// Bytes is the SHA-256 of b in lowercase hex.
func Bytes(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// File is the SHA-256 of the file at path in lowercase hex, read in a stream (recordings and
// model files can be larger than is worth holding in memory).
func File(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
