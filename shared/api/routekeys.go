package api

// RouteKeys returns "METHOD /path" (the path relative to BasePath, with its {param}
// segments) of the named routes, or of every route when none are named: what the tenant
// portal is told the service offers (shared/portal's RoutesFile).
func RouteKeys(names ...string) []string {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var keys []string
	for _, rt := range Routes() {
		if len(names) == 0 || want[rt.Name] {
			keys = append(keys, rt.Method+" "+rt.Path)
		}
	}
	return keys
}
