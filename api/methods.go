package api

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/gofiber/fiber/v2"
)

// methodNotAllowed is registered after every route, so it runs only when no route matched the
// method and path. When the path is a known route's (under another method) it answers 405 with
// Allow listing the methods the app's route table has for it; otherwise the request goes on to
// the 404. The table is read on the first such request: every route is registered by then.
func methodNotAllowed(app *fiber.App) fiber.Handler {
	var (
		once   sync.Once
		routes []routePattern
	)
	return func(c *fiber.Ctx) error {
		once.Do(func() {
			for _, r := range app.GetRoutes(true) {
				routes = append(routes, routePattern{method: r.Method, segs: splitPath(r.Path)})
			}
		})
		var allow []string
		path := splitPath(c.Path())
		for _, r := range routes {
			if !slices.Contains(allow, r.method) && r.matches(path) {
				allow = append(allow, r.method)
			}
		}
		if len(allow) == 0 {
			return c.Next()
		}
		slices.SortFunc(allow, func(a, b string) int { return methodRank(a) - methodRank(b) })
		list := strings.Join(allow, ", ")
		c.Set(fiber.HeaderAllow, list)
		return bad(fiber.StatusMethodNotAllowed, fmt.Sprintf("%s is not allowed on %s: allowed methods are %s", c.Method(), c.Path(), list))
	}
}

// routePattern is a route's path pattern in segments: literals, ":param" (one non-empty
// segment) and "*" (the rest, maybe empty), compared as Fiber does by default: ignoring case
// and a trailing slash.
type routePattern struct {
	method string
	segs   []string
}

func splitPath(p string) []string {
	p = strings.Trim(strings.ToLower(p), "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

func (r routePattern) matches(path []string) bool {
	for i, seg := range r.segs {
		switch {
		case seg == "*" || seg == "+":
			return seg == "*" || i < len(path)
		case i >= len(path):
			return strings.HasPrefix(seg, ":") && strings.HasSuffix(seg, "?") && i == len(r.segs)-1
		case strings.HasPrefix(seg, ":"):
			if path[i] == "" {
				return false
			}
		case seg != path[i]:
			return false
		}
	}
	return len(path) == len(r.segs)
}

// methodRank orders Allow the usual way: reads, then writes.
func methodRank(m string) int {
	if i := slices.Index([]string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}, m); i >= 0 {
		return i
	}
	return 100
}
