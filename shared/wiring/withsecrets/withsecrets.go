// Package withsecrets gives a function's wiring the Secrets Manager client: the list routes'
// entry points pass Services to read the cursor-signing key at cold start. Only the
// functions that import it link the SDK's Secrets Manager client.
package withsecrets

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/datajetty/webhooks/shared/awserr"
	"github.com/datajetty/webhooks/shared/wiring/coldstart"
)

// Services reads secrets with GetSecretValue.
var Services = coldstart.Services{ReadSecret: readSecret}

func readSecret(ctx context.Context, cfg aws.Config, arn string) (string, error) {
	out, err := secretsmanager.NewFromConfig(cfg).GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn)})
	if err != nil {
		return "", fmt.Errorf("read secret: %w", awserr.Classify("secrets", err))
	}
	return aws.ToString(out.SecretString), nil
}
