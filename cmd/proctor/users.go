package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"proctor/store"
)

// runUsersCreate: proctor users create --org ORG --email EMAIL --role reviewer|data|admin
// [--password-stdin]. Without --password-stdin a password is generated and printed once.
func runUsersCreate(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("users create", flag.ContinueOnError)
	var sf serviceFlags
	sf.register(fs)
	org := fs.String("org", "default", "organisation the user belongs to (created if missing)")
	email := fs.String("email", "", "the user's email: their sign-in name")
	role := fs.String("role", store.RoleReviewer, "reviewer (triage), data (exports) or admin (keys, users, settings, audit)")
	stdin := fs.Bool("password-stdin", false, "read the password from the first line of standard input instead of generating one")
	reset := fs.Bool("reset", false, "if the user exists in this organisation, set the new role and password")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *email == "" {
		return usageError{fmt.Errorf("--email is required")}
	}
	password := ""
	if *stdin {
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil && line == "" {
			return usageError{fmt.Errorf("--password-stdin: no password on standard input")}
		}
		password = strings.TrimRight(line, "\r\n")
	} else {
		password = store.NewPassword()
	}
	st, err := store.Open(ctx, sf.storeConfig())
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.EnsureOrganisation(ctx, *org, *org); err != nil {
		return err
	}
	u, err := st.CreateUser(ctx, *org, *email, *role, password, *reset)
	if err != nil {
		return usageError{err}
	}
	if err := store.Audit(st.DB.WithContext(ctx), store.AuditEntry{OrgID: *org, Actor: "cli", Action: "user.create",
		Target: "user:" + u.ID, Detail: u.Email + " [" + u.Role + "]"}); err != nil {
		return err
	}
	if *stdin {
		fmt.Printf("user %s (%s) created in %s\n", u.Email, u.Role, u.OrgID)
	} else {
		fmt.Printf("user %s (%s) created in %s; password (shown once): %s\n", u.Email, u.Role, u.OrgID, password)
	}
	return nil
}
