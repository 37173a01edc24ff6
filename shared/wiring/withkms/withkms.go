// Package withkms gives a function's wiring the KMS client: its entry point passes
// Services when the function seals or opens signing secrets (RegisterEndpoint, deliver).
// Only the functions that import this package link the SDK's KMS client.
package withkms

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/datajetty/webhooks/shared/app"
	"github.com/datajetty/webhooks/shared/kmssecrets"
	"github.com/datajetty/webhooks/shared/wiring/coldstart"
)

// Services builds the signing-secret box on KMS (shared/kmssecrets).
var Services = coldstart.Services{
	SecretBox: func(cfg aws.Config, keyID string) app.SecretBox {
		return kmssecrets.New(kms.NewFromConfig(cfg), keyID)
	},
}
