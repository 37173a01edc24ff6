// Command portal is the Lambda function behind GET {base}/portal and {base}/portal/{file}:
// the tenant portal's page and assets, embedded in the binary (shared/portal). Its cold
// start lives in shared/lambdaapi.
package main

import "github.com/datajetty/webhooks/shared/lambdaapi"

func main() { lambdaapi.RunPortal() }
