package api

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"proctor/store"
)

// Who may call what. Two kinds of caller:
//   - API keys ("Authorization: Bearer pk_…" or "X-API-Key"): the exam platform and API clients.
//     Scopes: ingest, review, data, admin (admin implies every other). No CSRF token: a browser
//     never sends a key by itself.
//   - Signed-in users (the reviewer page): an HttpOnly, SameSite=Strict session cookie. Their
//     role gives the scopes (reviewer → review, data → data, admin → all). Every POST/PUT/PATCH/
//     DELETE must carry the session's CSRF token in X-CSRF-Token.
//
// Either way the caller belongs to one organisation and sees only its data: another
// organisation's ids answer 404.

// SessionCookie is the name of the reviewer page's session cookie.
const SessionCookie = "proctor_session"

// CSRFHeader carries the CSRF token of a cookie session on state-changing requests.
const CSRFHeader = "X-CSRF-Token"

// Principal is the authenticated caller of a request.
type Principal struct {
	OrgID string
	// Actor names the caller in the audit log and on verdicts: "key:<id>" or "user:<email>".
	Actor  string
	Scopes string // comma-separated
	Key    *store.APIKey
	User   *store.User
	Web    *store.WebSession // set for cookie sessions
}

// HasScope reports whether the caller may use routes needing scope ("" = any signed-in caller).
func (p *Principal) HasScope(scope string) bool {
	if scope == "" {
		return true
	}
	for _, sc := range strings.Split(p.Scopes, ",") {
		if sc == scope || sc == store.ScopeAdmin {
			return true
		}
	}
	return false
}

const localPrincipal = "principal"

// auth requires a caller with one of the given scopes (none given = any authenticated caller).
func (s *Server) auth(scopes ...string) fiber.Handler {
	want := strings.Join(scopes, "' or '")
	return func(c *fiber.Ctx) error {
		p, err := s.authenticate(c)
		if err != nil {
			return err
		}
		ok := len(scopes) == 0
		for _, sc := range scopes {
			ok = ok || p.HasScope(sc)
		}
		if !ok {
			if p.User != nil {
				return bad(fiber.StatusForbidden, "your role ("+p.User.Role+") does not allow this: it needs the '"+want+"' scope")
			}
			return bad(fiber.StatusForbidden, "this API key lacks the '"+want+"' scope")
		}
		c.Locals(localPrincipal, p)
		if p.Key != nil {
			c.Locals(localKey, p.Key)
		} else {
			// Handlers written for keys only read OrgID (and ID for logs): give them a stand-in.
			c.Locals(localKey, &store.APIKey{ID: "user:" + p.User.Email, OrgID: p.OrgID, Scopes: p.Scopes})
		}
		return c.Next()
	}
}

func (s *Server) authenticate(c *fiber.Ctx) (*Principal, error) {
	token := c.Get("X-API-Key")
	if h := c.Get(fiber.HeaderAuthorization); token == "" && h != "" {
		var ok bool
		if token, ok = strings.CutPrefix(h, "Bearer "); !ok {
			return nil, bad(fiber.StatusUnauthorized, "Authorization header must be 'Bearer <api key>'")
		}
	}
	if token != "" {
		key, err := s.store.Authenticate(c.UserContext(), token)
		if errors.Is(err, store.ErrNotFound) {
			return nil, bad(fiber.StatusUnauthorized, "invalid or revoked API key")
		}
		if err != nil {
			return nil, err
		}
		return &Principal{OrgID: key.OrgID, Actor: "key:" + key.ID, Scopes: key.Scopes, Key: key}, nil
	}
	cookie := c.Cookies(SessionCookie)
	if cookie == "" {
		return nil, bad(fiber.StatusUnauthorized, "missing API key: send 'Authorization: Bearer <api key>', or sign in on the reviewer page")
	}
	ws, u, err := s.store.WebSessionUser(c.UserContext(), cookie)
	if errors.Is(err, store.ErrNotFound) {
		return nil, bad(fiber.StatusUnauthorized, "signed out (session expired or ended): sign in again")
	}
	if err != nil {
		return nil, err
	}
	switch c.Method() {
	case fiber.MethodGet, fiber.MethodHead, fiber.MethodOptions:
	default:
		got := c.Get(CSRFHeader)
		if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(ws.CSRFToken)) != 1 {
			return nil, bad(fiber.StatusForbidden, "missing or wrong "+CSRFHeader+" header: reload the page (cookie sessions need the CSRF token from GET /v1/me)")
		}
	}
	return &Principal{OrgID: u.OrgID, Actor: "user:" + u.Email, Scopes: store.RoleScopes(u.Role), User: u, Web: ws}, nil
}

// principal is the caller of a route behind auth.
func principal(c *fiber.Ctx) *Principal { return c.Locals(localPrincipal).(*Principal) }

// localKey is where auth puts the caller's API key (a stand-in for signed-in users).
const localKey = "apikey"

// caller is the API key of the request (for signed-in users a stand-in carrying their
// organisation and scopes). New code should use principal(c).
func caller(c *fiber.Ctx) *store.APIKey { return c.Locals(localKey).(*store.APIKey) }

// audit writes one audit entry for the caller of c.
func (s *Server) audit(c *fiber.Ctx, action, target string, detail any) error {
	p := principal(c)
	var d string
	switch v := detail.(type) {
	case nil:
	case string:
		d = v
	default:
		b, _ := json.Marshal(v)
		d = string(b)
	}
	return store.Audit(s.store.DB.WithContext(c.UserContext()), store.AuditEntry{OrgID: p.OrgID, Actor: p.Actor,
		Action: action, Target: target, Detail: d, RemoteIP: c.IP()})
}

type loginIn struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

// login signs a user in: JSON {email, password} → session cookie + CSRF token. Failed attempts
// are rate limited per account (email) and, with a higher limit, per address.
func (s *Server) login(c *fiber.Ctx) error {
	// A cross-site form cannot send JSON without a CORS preflight (which we never grant), and a
	// browser sends Origin on every cross-origin POST: together they stop login CSRF.
	if !c.Is("json") {
		return bad(fiber.StatusUnsupportedMediaType, "send JSON {\"email\": \"...\", \"password\": \"...\"} with Content-Type: application/json")
	}
	if o := c.Get(fiber.HeaderOrigin); o != "" {
		if u, err := url.Parse(o); err != nil || u.Host != c.Hostname() {
			return bad(fiber.StatusForbidden, "sign-in from another site ("+o+") is refused")
		}
	}
	var in loginIn
	if err := json.Unmarshal(c.Body(), &in); err != nil || in.Email == "" || in.Password == "" {
		return bad(fiber.StatusBadRequest, "body must be JSON {\"email\": \"...\", \"password\": \"...\"}")
	}
	if err := refuseNull(c.Body(), &in); err != nil {
		return err
	}
	if err := checkFields(field{"email", in.Email, 1024}, field{"password", in.Password, 1024}); err != nil {
		return err
	}
	email := strings.ToLower(strings.TrimSpace(in.Email))
	now := time.Now()
	// Two limits: per account (a locked account answers 429 for everyone) and, higher, per
	// address (other people behind the same NAT still sign in; a guesser trying many accounts
	// from one address does not).
	if wait := s.signIn.blocked(email, now); wait > 0 {
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(int(wait.Seconds())+1))
		return bad(fiber.StatusTooManyRequests, "too many failed sign-ins for this account: try again in "+wait.Round(time.Second).String())
	}
	if wait := s.signInIP.blocked(c.IP(), now); wait > 0 {
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(int(wait.Seconds())+1))
		return bad(fiber.StatusTooManyRequests, "too many failed sign-ins from your address: try again in "+wait.Round(time.Second).String())
	}
	u, err := s.store.CheckUser(c.UserContext(), email, in.Password)
	if errors.Is(err, store.ErrBadCredentials) {
		s.signIn.fail(email, now)
		s.signInIP.fail(c.IP(), now)
		s.log.Warn("sign-in failed", "email", email, "ip", c.IP())
		return bad(fiber.StatusUnauthorized, "wrong email or password")
	}
	if err != nil {
		return err
	}
	token, ws, err := s.store.CreateWebSession(c.UserContext(), u, c.IP())
	if err != nil {
		return err
	}
	c.Cookie(&fiber.Cookie{Name: SessionCookie, Value: token, Path: "/", HTTPOnly: true, SameSite: "Strict",
		Secure: c.Protocol() == "https", MaxAge: int(store.WebSessionTTL.Seconds())})
	p := &Principal{OrgID: u.OrgID, Actor: "user:" + u.Email, Scopes: store.RoleScopes(u.Role), User: u, Web: ws}
	c.Locals(localPrincipal, p)
	if err := s.audit(c, "auth.login", "user:"+u.ID, nil); err != nil {
		return err
	}
	return c.JSON(s.meBody(p))
}

// logout ends the cookie session (a no-op for API keys).
func (s *Server) logout(c *fiber.Ctx) error {
	p := principal(c)
	if p.Web != nil {
		if err := s.store.DeleteWebSession(c.UserContext(), c.Cookies(SessionCookie)); err != nil {
			return err
		}
		if err := s.audit(c, "auth.logout", "user:"+p.User.ID, nil); err != nil {
			return err
		}
	}
	c.Cookie(&fiber.Cookie{Name: SessionCookie, Value: "", Path: "/", HTTPOnly: true, SameSite: "Strict",
		Expires: time.Unix(1, 0), MaxAge: -1})
	return c.SendStatus(fiber.StatusNoContent)
}

// me says who the caller is; for cookie sessions it also returns the CSRF token.
func (s *Server) me(c *fiber.Ctx) error { return c.JSON(s.meBody(principal(c))) }

func (s *Server) meBody(p *Principal) fiber.Map {
	m := fiber.Map{"actor": p.Actor, "org_id": p.OrgID, "scopes": strings.Split(p.Scopes, ",")}
	if p.User != nil {
		m["email"], m["role"], m["user_id"] = p.User.Email, p.User.Role, p.User.ID
	}
	if p.Web != nil {
		m["csrf_token"] = p.Web.CSRFToken
		m["expires_at"] = p.Web.ExpiresAt
	}
	return m
}

// limiter counts failures per key in a leaky bucket: Burst failures in a row are allowed, then
// one more per Every. State is per process: behind several API processes the limit multiplies,
// which still turns a password guesser's millions into thousands.
type limiter struct {
	Burst int
	Every time.Duration

	mu sync.Mutex
	m  map[string]*bucket
}

type bucket struct {
	level float64 // failures not yet leaked away
	at    time.Time
}

func (l *limiter) leak(b *bucket, now time.Time) {
	b.level = max(0, b.level-float64(now.Sub(b.at))/float64(l.Every))
	b.at = now
}

// blocked returns how long key must wait before another attempt (0 = go ahead).
func (l *limiter) blocked(key string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.m[key]
	if b == nil {
		return 0
	}
	l.leak(b, now)
	if over := b.level - float64(l.Burst) + 1; over > 0 {
		return time.Duration(over * float64(l.Every))
	}
	return 0
}

// fail records a failed attempt.
func (l *limiter) fail(key string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[string]*bucket{}
	}
	if len(l.m) > 100_000 { // bound the memory a flood of distinct keys can take
		for k, b := range l.m {
			if l.leak(b, now); b.level == 0 {
				delete(l.m, k)
			}
		}
	}
	b := l.m[key]
	if b == nil {
		b = &bucket{at: now}
		l.m[key] = b
	}
	l.leak(b, now)
	b.level++
}
