// Command hello is the hello-world Lambda bootstrap make coldstart compares every function's
// cold start with: the Lambda runtime client and nothing else, built with the functions'
// own flags.
package main

import "github.com/aws/aws-lambda-go/lambda"

func main() { lambda.Start(func() (string, error) { return "hello", nil }) }
