package store

import "strconv"

// tenantKey builds a partition key that no other tenant's key can equal, whatever
// characters tenant ids contain (the tenant is length-prefixed): "<len>:<tenant>#<suffix>".
// Every table keyed by tenant and something else (events, deliveries, idempotency records,
// rate-limit windows) builds its keys with it, here, so only the store decides a layout.
func tenantKey(tenantID, suffix string) string {
	return strconv.Itoa(len(tenantID)) + ":" + tenantID + "#" + suffix
}
