package backup

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/moorhq/moor/internal/domain"
)

// DefaultPartSize is the multipart part size for puts of unknown size: one
// buffer of it is held during such a put, and an object can have at most
// 10,000 parts (16 MiB: objects up to about 156 GiB).
const DefaultPartSize = 16 << 20

// S3Config says where an S3 target stores objects.
type S3Config struct {
	// Endpoint is host[:port] ("s3.eu-west-1.amazonaws.com", "minio:9000"), or a
	// URL "http://host:port" / "https://host", whose scheme then sets UseSSL.
	Endpoint  string
	Bucket    string
	Prefix    string // key prefix inside the bucket ("moor" stores "moor/<key>"); may be empty
	AccessKey string
	SecretKey string
	Region    string // may be empty: discovered from the bucket
	UseSSL    bool
	// PartSize is the multipart part size for puts of unknown size; 0: DefaultPartSize.
	PartSize uint64
	// Transport, when set, carries the requests (tests, custom CAs).
	Transport http.RoundTripper
}

// S3 is a Target in a bucket of S3-compatible storage (AWS S3, MinIO, Garage,
// Ceph RGW, ...).
type S3 struct {
	client   *minio.Client
	bucket   string
	prefix   string // "" or ending in "/"
	partSize uint64
}

var _ Target = (*S3)(nil)

// NewS3 returns the Target for cfg. It does not contact the server.
func NewS3(cfg S3Config) (*S3, error) {
	endpoint, secure := cfg.Endpoint, cfg.UseSSL
	if strings.Contains(endpoint, "://") {
		u, err := url.Parse(endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return nil, fmt.Errorf("backup S3 endpoint %q: want host[:port] or http(s)://host[:port]: %w", cfg.Endpoint, domain.ErrInvalid)
		}
		endpoint, secure = u.Host, u.Scheme == "https"
	}
	if endpoint == "" {
		return nil, fmt.Errorf("backup S3: no endpoint: %w", domain.ErrInvalid)
	}
	if cfg.Bucket == "" {
		return nil, fmt.Errorf("backup S3: no bucket: %w", domain.ErrInvalid)
	}
	prefix := strings.Trim(cfg.Prefix, "/")
	if prefix != "" {
		if err := ValidateKey(prefix); err != nil {
			return nil, fmt.Errorf("backup S3 prefix: %w", err)
		}
		prefix += "/"
	}
	partSize := cfg.PartSize
	if partSize == 0 {
		partSize = DefaultPartSize
	}
	client, err := minio.New(endpoint, &minio.Options{
		Creds:     credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:    secure,
		Region:    cfg.Region,
		Transport: cfg.Transport,
	})
	if err != nil {
		return nil, fmt.Errorf("backup S3: %w: %w", err, domain.ErrInvalid)
	}
	return &S3{client: client, bucket: cfg.Bucket, prefix: prefix, partSize: partSize}, nil
}

// Put uploads the content: in one request when size is known and at most
// 16 MiB, else as a multipart upload, which is aborted when Put fails (S3
// makes an object visible only when its upload completes).
func (s *S3) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	opts := minio.PutObjectOptions{
		ContentType: "application/octet-stream",
		// No SHA-256 of the payload in the signature (over TLS minio-go sends
		// none anyway): archives authenticate themselves, and the server checks
		// each part's CRC32C. Over plain HTTP this also spares the aws-chunked
		// streaming signature, which some S3-compatible servers store verbatim
		// in multipart parts.
		DisableContentSha256: true,
	}
	if size < 0 {
		size = -1
		opts.PartSize = s.partSize
	}
	if _, err := s.client.PutObject(ctx, s.bucket, s.prefix+key, ctxReader{ctx, r}, size, opts); err != nil {
		return s.err("put", key, err)
	}
	return nil
}

// Get opens the object. Its reads stop when ctx ends.
func (s *S3) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := ValidateKey(key); err != nil {
		return nil, err
	}
	obj, err := s.client.GetObject(ctx, s.bucket, s.prefix+key, minio.GetObjectOptions{})
	if err != nil {
		return nil, s.err("get", key, err)
	}
	if _, err := obj.Stat(); err != nil { // GetObject is lazy: find out whether it exists
		obj.Close()
		return nil, s.err("get", key, err)
	}
	return obj, nil
}

// Stat describes the object.
func (s *S3) Stat(ctx context.Context, key string) (Object, error) {
	if err := ValidateKey(key); err != nil {
		return Object{}, err
	}
	info, err := s.client.StatObject(ctx, s.bucket, s.prefix+key, minio.StatObjectOptions{})
	if err != nil {
		return Object{}, s.err("stat", key, err)
	}
	return Object{Key: key, Size: info.Size, ModTime: info.LastModified.UTC()}, nil
}

// Delete removes the object.
func (s *S3) Delete(ctx context.Context, key string) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	if err := s.client.RemoveObject(ctx, s.bucket, s.prefix+key, minio.RemoveObjectOptions{}); err != nil {
		if isNoSuchKey(err) {
			return nil
		}
		return s.err("delete", key, err)
	}
	return nil
}

// List lists the objects under the target's prefix whose keys start with
// prefix. Objects whose names are not valid keys are left out.
func (s *S3) List(ctx context.Context, prefix string) ([]Object, error) {
	if err := validatePrefix(prefix); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx) // stops the lister's goroutine on an early return
	defer cancel()
	var objs []Object
	for info := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix + prefix, Recursive: true}) {
		if info.Err != nil {
			return nil, s.err("list", prefix, info.Err)
		}
		key, ok := strings.CutPrefix(info.Key, s.prefix)
		if !ok || ValidateKey(key) != nil {
			continue
		}
		objs = append(objs, Object{Key: key, Size: info.Size, ModTime: info.LastModified.UTC()})
	}
	slices.SortFunc(objs, func(a, b Object) int { return strings.Compare(a.Key, b.Key) })
	return objs, nil
}

func isNoSuchKey(err error) bool {
	resp := minio.ToErrorResponse(err)
	return resp.Code == minio.NoSuchKey || (resp.StatusCode == http.StatusNotFound && resp.Code != minio.NoSuchBucket)
}

func (s *S3) err(op, key string, err error) error {
	if isNoSuchKey(err) {
		return fmt.Errorf("backup %s %s: s3://%s/%s%s: %w", op, key, s.bucket, s.prefix, key, domain.ErrNotFound)
	}
	return fmt.Errorf("backup %s %s: s3://%s/%s%s: %w", op, key, s.bucket, s.prefix, key, err)
}
