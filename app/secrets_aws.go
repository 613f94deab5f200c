package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/rampart-go/rampart/models"
)

// The Secrets Manager version stages read: the value in use, and the one
// before the last rotation.
const (
	awsStageCurrent  = "AWSCURRENT"
	awsStagePrevious = "AWSPREVIOUS"
)

// awsCoalesce is how long one read of the secret answers for every name in
// it: a refresh asks for each name in turn, and they all come from the one
// JSON document.
const awsCoalesce = time.Second

// awsSecretsAPI is the part of the Secrets Manager client the source uses.
type awsSecretsAPI interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// awsSource reads one secret of AWS Secrets Manager whose value is a JSON
// object of named strings, e.g.
//
//	{"cursor_key": "…", "alert_webhook_key": "…", "database_password": "…"}
//
// A name's current value comes from the AWSCURRENT version, its previous
// one from AWSPREVIOUS (when that version exists and has the name).
type awsSource struct {
	client   awsSecretsAPI
	id       string        // the secret's name or ARN
	coalesce time.Duration // awsCoalesce (tests: 0)

	mu      sync.Mutex
	fetched time.Time
	current map[string]models.Secret
	prev    map[string]models.Secret
}

// newAWSSource makes the Secrets Manager client with the standard AWS
// configuration chain: region, endpoint and credentials from the AWS_*
// variables, the shared configuration files, or the role of the instance,
// task or pod (the way to run in production: no long-lived keys at all).
// The AWS_* variables are read through getenv and passed explicitly, so
// that tests and the binary read the same environment.
func newAWSSource(ctx context.Context, cfg Config, getenv func(string) string) (*awsSource, error) {
	id := cfg.Secrets.ID
	var opts []func(*config.LoadOptions) error
	region := firstNonEmpty(getenv("AWS_REGION"), getenv("AWS_DEFAULT_REGION"))
	if region == "" {
		// An ARN names its region: arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME.
		if parts := strings.Split(id, ":"); len(parts) >= 7 && parts[0] == "arn" && parts[2] == "secretsmanager" {
			region = parts[3]
		}
	}
	if region != "" {
		opts = append(opts, config.WithRegion(region))
	}
	if p := getenv("AWS_PROFILE"); p != "" {
		opts = append(opts, config.WithSharedConfigProfile(p))
	}
	if ak, sk := getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_SECRET_ACCESS_KEY"); ak != "" && sk != "" {
		opts = append(opts, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(ak, sk, getenv("AWS_SESSION_TOKEN"))))
	}
	endpoint := firstNonEmpty(getenv("AWS_ENDPOINT_URL_SECRETS_MANAGER"), getenv("AWS_ENDPOINT_URL"))
	if endpoint != "" {
		if err := checkAWSEndpoint(endpoint, cfg.Env); err != nil {
			return nil, err
		}
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("APP_SECRETS=%s: AWS configuration: %w", cfg.Secrets, err)
	}
	if awsCfg.Region == "" {
		return nil, fmt.Errorf("APP_SECRETS=%s needs an AWS region: set AWS_REGION (or give the secret's ARN)", cfg.Secrets)
	}
	client := secretsmanager.NewFromConfig(awsCfg, func(o *secretsmanager.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	})
	return &awsSource{client: client, id: id, coalesce: awsCoalesce}, nil
}

// checkAWSEndpoint accepts an endpoint override: https, or in
// development, or on a loopback address (a local emulator), plain http.
// Production never sends its secrets over plain HTTP across a network.
func checkAWSEndpoint(raw, env string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || u.User != nil {
		return errors.New("AWS_ENDPOINT_URL must be an http(s):// URL with a host and no user information")
	}
	if u.Scheme == "http" && env == EnvProduction {
		host := u.Hostname()
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return errors.New("AWS_ENDPOINT_URL must use https in production (plain http only to a loopback address)")
		}
	}
	return nil
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v = strings.TrimSpace(v); v != "" {
			return v
		}
	}
	return ""
}

// Get returns the name field of the secret's current and previous
// versions.
func (s *awsSource) Get(ctx context.Context, name string) (SecretVersions, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.current == nil || time.Since(s.fetched) >= s.coalesce {
		cur, err := s.read(ctx, awsStageCurrent)
		if err != nil {
			return SecretVersions{}, err
		}
		prev, err := s.read(ctx, awsStagePrevious)
		var notFound *smtypes.ResourceNotFoundException
		if errors.As(err, &notFound) {
			// A secret that was never rotated has no AWSPREVIOUS version.
			prev, err = map[string]models.Secret{}, nil
		}
		if err != nil {
			return SecretVersions{}, err
		}
		s.current, s.prev, s.fetched = cur, prev, time.Now()
	}
	v, ok := s.current[name]
	if !ok || v.IsZero() {
		return SecretVersions{}, errSecretMissing
	}
	return SecretVersions{Current: v, Previous: s.prev[name]}, nil
}

// read returns the fields of one version stage of the secret. The error
// names the secret and the stage; it never holds the value.
func (s *awsSource) read(ctx context.Context, stage string) (map[string]models.Secret, error) {
	out, err := s.client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{
		SecretId: aws.String(s.id), VersionStage: aws.String(stage),
	})
	if err != nil {
		if stage == awsStagePrevious {
			return nil, err
		}
		return nil, fmt.Errorf("read the secret %s (%s) from AWS Secrets Manager: %w", s.id, stage, err)
	}
	if out.SecretString == nil {
		return nil, fmt.Errorf("the secret %s (%s) has no text value: it must be a JSON object of named strings", s.id, stage)
	}
	// Strings only; a number or an object in the secret is a mistake that
	// is reported (by field name), not guessed at.
	dec := json.NewDecoder(bytes.NewReader([]byte(*out.SecretString)))
	var fields map[string]any
	if err := dec.Decode(&fields); err != nil || dec.More() {
		return nil, fmt.Errorf("the secret %s (%s) is not a JSON object of named strings", s.id, stage)
	}
	m := make(map[string]models.Secret, len(fields))
	for k, v := range fields {
		str, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("the secret %s (%s): field %q is not a string", s.id, stage, safeArg(k))
		}
		m[k] = models.NewSecret(strings.TrimSpace(str))
	}
	return m, nil
}
