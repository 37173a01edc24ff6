// Package kmssecrets encrypts endpoint signing secrets at rest with AWS KMS.
package kmssecrets

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/datajetty/webhooks/shared/awserr"
	"github.com/datajetty/webhooks/shared/signing"
)

// dependency names KMS in errors a client may see.
const dependency = "key service"

// Box seals secrets with a KMS key. Every ciphertext is bound to its tenant and endpoint by
// the encryption context, so a ciphertext copied onto another endpoint does not decrypt
// (and CloudTrail records which endpoint each decryption was for).
type Box struct {
	kms   *kms.Client
	keyID string
}

// New returns a box using the KMS key keyID (key id, ARN or alias).
func New(client *kms.Client, keyID string) *Box {
	return &Box{kms: client, keyID: keyID}
}

func encryptionContext(tenantID, endpointID string) map[string]string {
	return map[string]string{"tenant_id": tenantID, "endpoint_id": endpointID}
}

// Seal encrypts s for the endpoint (one KMS Encrypt). Errors never contain the secret:
// the SDK does not echo request parameters in its errors.
func (b *Box) Seal(ctx context.Context, tenantID, endpointID string, s signing.Secret) ([]byte, error) {
	if s.IsZero() {
		return nil, errors.New("seal secret: the secret is empty")
	}
	out, err := b.kms.Encrypt(ctx, &kms.EncryptInput{
		KeyId:             &b.keyID,
		Plaintext:         []byte(s.Encode()),
		EncryptionContext: encryptionContext(tenantID, endpointID),
	})
	if err != nil {
		return nil, awserr.Classify(dependency, fmt.Errorf("seal secret of endpoint %s: %w", endpointID, err))
	}
	return out.CiphertextBlob, nil
}

// Open decrypts a ciphertext sealed for the same endpoint (one KMS Decrypt). The key is
// named explicitly so that a ciphertext made under any other key is refused.
func (b *Box) Open(ctx context.Context, tenantID, endpointID string, ciphertext []byte) (signing.Secret, error) {
	out, err := b.kms.Decrypt(ctx, &kms.DecryptInput{
		KeyId:             &b.keyID,
		CiphertextBlob:    ciphertext,
		EncryptionContext: encryptionContext(tenantID, endpointID),
	})
	if err != nil {
		return signing.Secret{}, awserr.Classify(dependency, fmt.Errorf("open secret of endpoint %s: %w", endpointID, err))
	}
	s, err := signing.ParseSecret(string(out.Plaintext))
	clear(out.Plaintext)
	if err != nil {
		// ParseSecret's errors never echo their input.
		return signing.Secret{}, fmt.Errorf("open secret of endpoint %s: %w", endpointID, err)
	}
	return s, nil
}
