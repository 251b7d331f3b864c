package api

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
)

// methodNotAllowed is registered after every route, so it runs only when no route matched the
// method and path. When the path is a known route's (under another method) it answers 405 with
// Allow listing the methods the app's route table has for it; otherwise the request goes on to
// the 404. The table is read on the first such request: every route is registered by then.
func methodNotAllowed(rt *routeTable) fiber.Handler {
	return func(c *fiber.Ctx) error {
		allow := rt.allowed(c.Path())
		if allow == "" {
			return c.Next()
		}
		c.Set(fiber.HeaderAllow, allow)
		return bad(fiber.StatusMethodNotAllowed, fmt.Sprintf("%s is not allowed on %s: allowed methods are %s", c.Method(), c.Path(), allow))
	}
}

// unknownMethods wraps the server's handler: Fiber answers a method outside its list (QUERY,
// PROPFIND, FOO) with a bare 400 "Invalid http method" before any middleware runs, so such
// requests are answered here, as methodNotAllowed does: 405 with Allow on a known path, 404 on
// another, both with the JSON error body.
func unknownMethods(app *fiber.App, rt *routeTable) {
	srv := app.Server()
	next := srv.Handler
	known := map[string]bool{}
	for _, m := range app.Config().RequestMethods {
		known[m] = true
	}
	if len(known) == 0 {
		for _, m := range fiber.DefaultMethods {
			known[m] = true
		}
	}
	srv.Handler = func(ctx *fasthttp.RequestCtx) {
		if known[string(ctx.Method())] {
			next(ctx)
			return
		}
		path := string(ctx.Path())
		code, msg := fiber.StatusNotFound, "no route "+path
		if allow := rt.allowed(path); allow != "" {
			ctx.Response.Header.Set(fiber.HeaderAllow, allow)
			code, msg = fiber.StatusMethodNotAllowed, fmt.Sprintf("%q is not allowed on %s: allowed methods are %s", ctx.Method(), path, allow)
		}
		body, _ := json.Marshal(apiError{Error: msg})
		ctx.SetStatusCode(code)
		ctx.SetContentType(fiber.MIMEApplicationJSON)
		ctx.SetBody(body)
	}
}

// routeTable is the app's routes, read on first use: every route is registered by then.
type routeTable struct {
	app    *fiber.App
	once   sync.Once
	routes []routePattern
}

// allowed lists the methods the route table has for path, the usual order ("GET, HEAD, POST"),
// or "" when no route has this path.
func (rt *routeTable) allowed(p string) string {
	rt.once.Do(func() {
		for _, r := range rt.app.GetRoutes(true) {
			rt.routes = append(rt.routes, routePattern{method: r.Method, segs: splitPath(r.Path)})
		}
	})
	var allow []string
	path := splitPath(p)
	for _, r := range rt.routes {
		if !slices.Contains(allow, r.method) && r.matches(path) {
			allow = append(allow, r.method)
		}
	}
	slices.SortFunc(allow, func(a, b string) int { return methodRank(a) - methodRank(b) })
	return strings.Join(allow, ", ")
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
