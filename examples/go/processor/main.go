// A payout processor in Go with pgx v4: claims payouts and drives them
// through a payment provider, here a fake one.
//
//	PGHOST=... PGUSER=processor PGPASSWORD=... processor [--manual] [NAME]
//
// Connects with libpq's environment variables, which pgx reads too.
// --manual makes it an operator's processor: it claims manual payouts
// (payout.claim(..., manual => true)) and listens on payout_manual; the role
// must be an operator.
//
// Each payout is claimed and driven in one transaction, so the claim's row
// lock covers the provider call: nobody else touches the payout meanwhile,
// and if the connection is lost, PostgreSQL rolls the claim back and the
// payout is READY for the next claim.  The provider is called with the
// payout's key as idempotency key, so a second call after such a rollback
// gets the first call's answer.  Stop it with SIGTERM or SIGINT.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgconn"
	"github.com/jackc/pgx/v4"
)

const (
	table    = "public.payouts" // as notifications name it
	provider = "fakepay"        // a provider of payout.provider_code
	hold     = "payout_moderation_hold"
)

var (
	manual   bool
	name     = "processor"
	channel  = "payout_ready"
	stopping int32
)

func logf(format string, args ...interface{}) {
	fmt.Printf(name+": "+format+"\n", args...)
}

func stopped() bool { return atomic.LoadInt32(&stopping) != 0 }

// answer is what the fake provider says, as payout.classify() takes it.
type answer struct {
	code       *string
	httpStatus *int32
	timedOut   bool
}

// register answers by key, the same every time for the same key (an
// idempotent provider): keys ending in 7 lack funds, keys ending in 3 time
// out at the first call and are registered at the next one.
func register(key string, retry bool) answer {
	k, _ := strconv.ParseInt(key, 10, 64)
	code := func(c string) *string { return &c }
	ok := int32(200)
	switch {
	case k%10 == 7:
		return answer{code("E_FUNDS"), &ok, false}
	case k%10 == 3 && !retry:
		return answer{nil, nil, true}
	}
	return answer{code("0"), &ok, false}
}

// confirmsLate says whether the provider, after a timeout, calls back to
// say the payout went through after all.
func confirmsLate(key string) bool {
	k, _ := strconv.ParseInt(key, 10, 64)
	return k%20 == 3
}

// drive moves one payout that this transaction has locked on, until it is
// done or held.  Returns "processed", "failed" or "held".
func drive(ctx context.Context, tx pgx.Tx, key, status string, resolution *string) (string, error) {
	if status == "INVOKING" {
		// A payout released by a moderator has resolution OK: call again.
		a := register(key, resolution != nil)
		var res, group string
		// Enums read as strings: pgx does not know payout.resolution, and
		// scans a value of a type it does not know into a string only.
		err := tx.QueryRow(ctx,
			"SELECT r, payout.resolution_group_of(r) FROM payout.classify($1, $2, $3, $4) AS r",
			provider, a.code, a.httpStatus, a.timedOut).Scan(&res, &group)
		if err != nil {
			return "", err
		}
		switch group {
		case "FATAL_ERROR":
			// A fatal resolution needs a final status in the same statement.
			_, err = tx.Exec(ctx,
				"UPDATE payouts SET resolution = $2, status = payout.failure_status(status) WHERE id = $1", key, res)
			return "failed", err
		case "ERROR":
			// From the commit on, the payout is held for a moderator.
			_, err = tx.Exec(ctx, "UPDATE payouts SET resolution = $2 WHERE id = $1", key, res)
			return "held", err
		}
		// The key is text, as claim() returns it: pgx sends a string as
		// text, which PostgreSQL reads as the bigint the column is.
		if _, err = tx.Exec(ctx,
			"UPDATE payouts SET status = 'PROCESSING', resolution = 'OK' WHERE id = $1", key); err != nil {
			return "", err
		}
	}
	// PROCESSING or PENDING: the fake provider has always paid by now.
	_, err := tx.Exec(ctx, "UPDATE payouts SET status = 'PROCESSED' WHERE id = $1", key)
	return "processed", err
}

// claimOne claims one payout and drives it, in one transaction.  Returns
// its key and what became of it, or "" when there was nothing to claim.
func claimOne(ctx context.Context, conn *pgx.Conn) (key, outcome string, err error) {
	err = conn.BeginFunc(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, "SELECT key FROM payout.claim($1, 1, manual => $2) AS key",
			table, manual).Scan(&key)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		outcome, err = drive(ctx, tx, key, "INVOKING", nil)
		return err
	})
	return key, outcome, err
}

// resumeOne drives on one payout that a moderator released (or that nobody
// works on for another reason): one in a processing status, not held, and
// not locked, since every payout being worked on is locked by its
// processor's transaction.
func resumeOne(ctx context.Context, conn *pgx.Conn) (key, outcome string, err error) {
	err = conn.BeginFunc(ctx, func(tx pgx.Tx) error {
		var status string
		var resolution *string
		err := tx.QueryRow(ctx,
			"SELECT id::text, status, resolution FROM payouts"+
				" WHERE status IN ('INVOKING', 'PROCESSING', 'PENDING')"+
				"   AND NOT payout.requires_moderation(status, resolution)"+
				"   AND autoprocess = $1"+
				" ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED", !manual).Scan(&key, &status, &resolution)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		outcome, err = drive(ctx, tx, key, status, resolution)
		return err
	})
	return key, outcome, err
}

// providerCallback records that a payout that timed out went through,
// unless the payout is held: then only a moderator may change it, so it
// leaves the news in a note (other columns of a held payout may change).
func providerCallback(ctx context.Context, conn *pgx.Conn, key string) error {
	_, err := conn.Exec(ctx,
		"UPDATE payouts SET status = 'PROCESSING', resolution = 'OK' WHERE id = $1 AND status = 'INVOKING'", key)
	var pgErr *pgconn.PgError
	// 42501 is also "permission denied": only the hold is expected here.
	if !errors.As(err, &pgErr) || pgErr.Code != "42501" || pgErr.ConstraintName != hold {
		return err
	}
	if _, err = conn.Exec(ctx, "UPDATE payouts SET note = $2 WHERE id = $1",
		key, "the provider confirmed the payout after the timeout"); err != nil {
		return err
	}
	logf("payout %s is held (42501 %s): left a note for the moderators", key, hold)
	return nil
}

// drain claims and resumes payouts until there are none left.
func drain(ctx context.Context, conn *pgx.Conn) error {
	for !stopped() {
		key, outcome, err := claimOne(ctx, conn)
		if err == nil && key == "" {
			key, outcome, err = resumeOne(ctx, conn)
		}
		if err != nil {
			return err
		}
		if key == "" {
			return nil
		}
		if outcome == "held" && confirmsLate(key) {
			if err := providerCallback(ctx, conn, key); err != nil {
				return err
			}
		}
	}
	return nil
}

func serve(ctx context.Context, conn *pgx.Conn) error {
	if _, err := conn.Exec(ctx, "LISTEN "+channel); err != nil {
		return err
	}
	// Nothing was queued for us while we were not listening: look now.
	if err := drain(ctx, conn); err != nil {
		return err
	}
	for !stopped() {
		// Wake up for a notification, or every second anyway: a release in
		// another status than READY, or one missed while reconnecting, is
		// found by looking.  A notification is a hint, which any role may
		// send: it says when to look, and this processor looks only at the
		// table it serves, whatever table a payload names.
		wait, cancel := context.WithTimeout(ctx, time.Second)
		_, err := conn.WaitForNotification(wait)
		cancel()
		if err != nil && !pgconn.Timeout(err) {
			return err
		}
		if err := drain(ctx, conn); err != nil {
			return err
		}
	}
	return nil
}

// transient says whether err cost one transaction only (a serialization
// failure, a deadlock), after which the connection goes on.
func transient(conn *pgx.Conn, err error) bool {
	var pgErr *pgconn.PgError
	return !conn.IsClosed() && errors.As(err, &pgErr) &&
		(pgErr.Code == "40001" || pgErr.Code == "40P01")
}

func main() {
	for _, a := range os.Args[1:] {
		if a == "--manual" {
			manual = true
			channel = "payout_manual"
		} else if !strings.HasPrefix(a, "--") {
			name = a
		}
	}
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-signals
		atomic.StoreInt32(&stopping, 1)
	}()

	// Queries get no deadline of their own: a stop waits for the payout at
	// hand, and a lost connection fails the query that uses it.
	ctx := context.Background()
	config, err := pgx.ParseConfig("")
	if err != nil {
		logf("bad connection settings: %v", err)
		os.Exit(2)
	}
	config.RuntimeParams["application_name"] = name

	var conn *pgx.Conn
	for !stopped() {
		if conn == nil {
			if conn, err = pgx.ConnectConfig(ctx, config); err != nil {
				logf("cannot connect (%v): retrying", err)
				conn = nil
				time.Sleep(500 * time.Millisecond)
				continue
			}
			logf("connected")
		}
		err = serve(ctx, conn)
		if err == nil || transient(conn, err) {
			continue
		}
		var pgErr *pgconn.PgError
		isPgErr := errors.As(err, &pgErr)
		if isPgErr && !conn.IsClosed() && pgErr.Code != "57P01" && !strings.HasPrefix(pgErr.Code, "08") {
			// An error of the server's on a live connection: a bug here.
			logf("unexpected error: %v", err)
			os.Exit(1)
		}
		// The connection is lost, and the transaction with it, claim and
		// all: start again on a fresh one.
		code := err.Error()
		if isPgErr {
			code = pgErr.Code
		}
		logf("connection lost (%s): reconnecting", strings.SplitN(code, "\n", 2)[0])
		conn.Close(ctx)
		conn = nil
		time.Sleep(500 * time.Millisecond)
	}
	if conn != nil {
		conn.Close(ctx)
	}
	logf("stopped")
}
