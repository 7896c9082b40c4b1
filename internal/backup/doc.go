// Package backup holds moor's backup archive format and the targets archives
// are stored on (a local directory, S3-compatible storage).
//
// An archive is a tar stream (what Docker's archive endpoint gives, or a
// database dump), compressed with zstd and encrypted in authenticated chunks.
// Writer and Reader stream it with memory bounded by their buffers (a chunk,
// the zstd window and state, 1 MiB of input staging), whatever the archive's
// size: about 11 MB allocated per Writer and 5-10 MB per Reader.
//
// # Keys
//
// The backup key K (32 bytes) is derived from moor's secret key S (the 32 bytes
// MOOR_SECRET_KEY holds) and is never S itself:
//
//	K = HKDF-SHA256(IKM = S, salt = empty, info = "moor backup v1", 32 bytes)
//
// Each archive has a random 32-byte salt. With PRK = HKDF-Extract-SHA256(salt,
// K), three 32-byte keys are expanded (HKDF-Expand-SHA256(PRK, info, 32)):
//
//	C = info "moor backup v1 key check"   stored in the header to recognise K
//	H = info "moor backup v1 header"      HMAC-SHA256 key of the header
//	P = info "moor backup v1 payload"     AES-256-GCM key of the chunks
//
// # Layout
//
// All integers are big-endian. Offsets are in bytes.
//
//	offset    size  field
//	0         7     magic "MOORBK1" (ASCII)
//	7         1     version, 1
//	8         4     chunk size, 65536 (plaintext bytes per chunk)
//	12        32    salt, random
//	44        8     nonce prefix, random
//	52        32    key check: C
//	84        4     meta length N (at most 65536)
//	88        N     meta: JSON, UTF-8 (fields kind, container, volume, created, labels)
//	88+N      32    header MAC: HMAC-SHA256(H, bytes 0 to 88+N)
//	120+N     ...   chunks, to the end of the file
//
// The payload is the zstd stream (RFC 8878; one or more frames) of the tar
// stream, cut into pieces of 65536 bytes; the last piece holds the remaining
// 1 to 65536 bytes (0 only when the payload is empty, and then it is the only
// piece). Piece i (i = 0, 1, 2, ...; at most 2^32 pieces) is stored as
//
//	AES-256-GCM-Seal(key P, nonce = prefix (8 bytes) || uint32(i) (4 bytes),
//	                 plaintext = piece i, additional data = one byte F)
//
// that is its ciphertext (as long as the piece) followed by the 16-byte tag,
// where F is 0x01 for the last piece and 0x00 for every other. So every chunk
// but the last is exactly 65552 bytes, and the last is 16 to 65552 bytes and
// ends the file. A reader takes 65552 bytes at a time: a shorter read, or a
// full one at the end of the file, is the last chunk, and opens with F = 0x01.
//
// The index in the nonce makes a reordered, dropped or repeated chunk fail to
// open; F makes a file cut at a chunk boundary fail (its new last chunk was
// sealed with F = 0x00), and so does data after the true last chunk; the HMAC
// covers the meta and every header field.
//
// # Decrypting by hand
//
// Derive K, read the salt and derive C, H and P; compare C with the key check
// (a mismatch: another key); check the header MAC; open the chunks in order as
// above and concatenate their plaintexts; decompress with any zstd decoder
// (zstd -d); the result is a tar stream (tar -x). The SHA-256 recorded with the
// backup is the SHA-256 of that tar stream.
//
// # Errors
//
// Reader returns an error wrapping ErrWrongKey when the key check does not
// match and ErrCorrupt for any other failed check, before any byte of a chunk
// that fails is returned; an I/O error of the underlying reader is returned as
// it is. Earlier chunks' bytes, authentic, may already have been read: a
// restore verifies a whole archive (read to io.EOF, compare Sum) before it
// overwrites anything.
//
// # Targets
//
// A Target stores archives under keys made of [a-z0-9._/-] ("volumes/blog/
// 2026-01-02T030405Z-data.moorbk"): Dir in a local directory, S3 in a bucket of
// S3-compatible storage. Missing objects give errors wrapping
// domain.ErrNotFound; bad keys, domain.ErrInvalid.
package backup
