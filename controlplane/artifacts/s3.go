package artifacts

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3Config locates an S3-compatible bucket and the credentials to use it.
type S3Config struct {
	// Endpoint is the store's base URL: https://s3.eu-west-1.amazonaws.com,
	// https://minio.example.com:9000 (http:// for a lab).
	Endpoint string
	// Bucket must exist; Prefix (optional) is prepended to every key.
	Bucket, Prefix string
	// Region signs the requests (default us-east-1).
	Region string
	// CredentialsFile, when set, is an AWS shared credentials file
	// (INI: aws_access_key_id, aws_secret_access_key, aws_session_token)
	// read for Profile (default "default"). Empty: the environment's
	// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN.
	CredentialsFile, Profile string
}

// S3 keeps artifacts as objects <prefix>/<sha256> in a bucket of an
// S3-compatible store.
type S3 struct {
	c              *minio.Client
	bucket, prefix string
}

// NewS3 checks cfg and its credentials and returns the store. It does not
// contact the store: Check does.
func NewS3(cfg S3Config) (*S3, error) {
	u, err := url.Parse(cfg.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return nil, fmt.Errorf("artifacts.endpoint: %q is not an http(s) base URL such as https://s3.eu-west-1.amazonaws.com", cfg.Endpoint)
	}
	if cfg.Bucket == "" {
		return nil, errors.New("artifacts.bucket: required with store = \"s3\"")
	}
	creds, err := loadCredentials(cfg.CredentialsFile, cfg.Profile)
	if err != nil {
		return nil, err
	}
	region := cfg.Region
	if region == "" {
		region = "us-east-1"
	}
	c, err := minio.New(u.Host, &minio.Options{Creds: creds, Secure: u.Scheme == "https", Region: region})
	if err != nil {
		return nil, fmt.Errorf("artifacts.endpoint: %w", err)
	}
	return &S3{c: c, bucket: cfg.Bucket, prefix: strings.Trim(cfg.Prefix, "/")}, nil
}

// loadCredentials reads the keys from file (AWS shared credentials
// format) or from the environment, and refuses empty ones with the place
// to set them.
func loadCredentials(file, profile string) (*credentials.Credentials, error) {
	var creds *credentials.Credentials
	where := "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in poolserver's environment"
	if file != "" {
		if _, err := os.Stat(file); err != nil {
			return nil, fmt.Errorf("artifacts.credentials_file: %w", err)
		}
		if profile == "" {
			profile = "default"
		}
		creds = credentials.NewFileAWSCredentials(file, profile)
		where = fmt.Sprintf("aws_access_key_id and aws_secret_access_key in profile [%s] of artifacts.credentials_file %s", profile, file)
	} else {
		creds = credentials.NewEnvAWS()
	}
	v, err := creds.GetWithContext(nil) // nil: the default HTTP client; these providers read files and the environment
	if err != nil {
		return nil, fmt.Errorf("artifacts: read the object store's credentials from %s: %w", where, err)
	}
	if v.AccessKeyID == "" || v.SecretAccessKey == "" {
		return nil, fmt.Errorf("artifacts: no object store credentials: set %s", where)
	}
	return creds, nil
}

// key is the object key of the artifact sha.
func (s *S3) key(sha string) string {
	if s.prefix == "" {
		return sha
	}
	return path.Join(s.prefix, sha)
}

// Check makes sure the bucket exists and the credentials may read it.
func (s *S3) Check(ctx context.Context) error {
	ok, err := s.c.BucketExists(ctx, s.bucket)
	if err != nil {
		return fmt.Errorf("artifacts: reach bucket %q at %s: %w", s.bucket, s.c.EndpointURL(), err)
	}
	if !ok {
		return fmt.Errorf("artifacts.bucket: bucket %q does not exist at %s: create it first", s.bucket, s.c.EndpointURL())
	}
	return nil
}

// Put uploads r (size bytes) as the artifact sha. An object already there
// under that key holds the same bytes (the key is their SHA-256), so it is
// left as it is.
func (s *S3) Put(ctx context.Context, sha string, r io.Reader, size int64) error {
	if err := checkKey(sha); err != nil {
		return err
	}
	if info, err := s.c.StatObject(ctx, s.bucket, s.key(sha), minio.StatObjectOptions{}); err == nil && info.Size == size {
		return nil
	}
	_, err := s.c.PutObject(ctx, s.bucket, s.key(sha), r, size, minio.PutObjectOptions{
		ContentType:    "application/octet-stream",
		SendContentMd5: true,
		UserMetadata:   map[string]string{"sha256": sha},
	})
	if err != nil {
		return fmt.Errorf("upload artifact to bucket %q key %q: %w", s.bucket, s.key(sha), err)
	}
	return nil
}

// Open returns the object for reading with seeks: each read after a seek
// is a ranged GET, so poolserver serves Range requests without fetching
// the whole object.
func (s *S3) Open(ctx context.Context, sha string) (io.ReadSeekCloser, error) {
	if err := checkKey(sha); err != nil {
		return nil, err
	}
	obj, err := s.c.GetObject(ctx, s.bucket, s.key(sha), minio.GetObjectOptions{})
	if err == nil {
		_, err = obj.Stat()
	}
	if err != nil {
		if obj != nil {
			obj.Close()
		}
		if minio.ToErrorResponse(err).Code == minio.NoSuchKey {
			return nil, fmt.Errorf("%s is missing from bucket %q: %w", s.key(sha), s.bucket, ErrNotFound)
		}
		return nil, fmt.Errorf("open artifact in bucket %q: %w", s.bucket, err)
	}
	return obj, nil
}

// PresignGet returns a GET URL for the artifact sha valid for expiry:
// anyone holding it may read that one object until then, and nothing else.
func (s *S3) PresignGet(ctx context.Context, sha string, expiry time.Duration) (string, error) {
	if err := checkKey(sha); err != nil {
		return "", err
	}
	u, err := s.c.PresignedGetObject(ctx, s.bucket, s.key(sha), expiry, nil)
	if err != nil {
		return "", fmt.Errorf("presign artifact URL: %w", err)
	}
	return u.String(), nil
}
