// A payout table used from Go with pgx v4, and what each piece of the
// guide's advice for Go does: prints "ok - ..." or "not ok - ..." for each.
//
//	PGHOST=... PGUSER=owner PGPASSWORD=... checks
//
// The role creates a table, so it needs CREATE on schema public and, for
// the table to keep history, EXECUTE on payout.record_history(); it must
// not be a moderator (nor a superuser), to meet the hold.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"

	"github.com/jackc/pgconn"
	"github.com/jackc/pgtype"
	"github.com/jackc/pgx/v4"
)

var failures = 0

func check(description string, passed bool, got interface{}) {
	if passed {
		fmt.Printf("ok - pgx: %s\n", description)
		return
	}
	failures++
	fmt.Printf("not ok - pgx: %s (got %v)\n", description, got)
}

// pgError is the server's error in err, or nil.
func pgError(err error) *pgconn.PgError {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr
	}
	return nil
}

// failsWith says whether err is the server's error code (and rule, when
// constraint is not "").
func failsWith(err error, code, constraint string) bool {
	e := pgError(err)
	return e != nil && e.Code == code && (constraint == "" || e.ConstraintName == constraint)
}

// registerPayoutTypes teaches a connection payout.status and
// payout.resolution and their arrays, by their OIDs in this database, as
// text (pgtype.Text): then they scan into interface{} and []string.  A pool
// does it in its AfterConnect hook.
func registerPayoutTypes(ctx context.Context, conn *pgx.Conn) error {
	for _, name := range []string{"payout.status", "payout.resolution"} {
		var oid, arrayOID uint32
		if err := conn.QueryRow(ctx, "SELECT $1::regtype::oid, ($1 || '[]')::regtype::oid", name).
			Scan(&oid, &arrayOID); err != nil {
			return err
		}
		info := conn.ConnInfo()
		info.RegisterDataType(pgtype.DataType{Value: &pgtype.Text{}, Name: name, OID: oid})
		info.RegisterDataType(pgtype.DataType{
			Value: pgtype.NewArrayType(name+"[]", oid, func() pgtype.ValueTranscoder { return &pgtype.Text{} }),
			Name:  name + "[]",
			OID:   arrayOID,
		})
	}
	return nil
}

func run(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, "application_name=pgx-checks")
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	for _, sql := range []string{
		"DROP TABLE IF EXISTS pgx_payouts",
		`CREATE TABLE pgx_payouts (
			id bigint PRIMARY KEY,
			amount numeric NOT NULL,
			status payout.status NOT NULL DEFAULT 'CREATED',
			resolution payout.resolution,
			created_at timestamptz NOT NULL DEFAULT now())`,
		"SELECT payout.attach('pgx_payouts')",
		"INSERT INTO pgx_payouts (id, amount) VALUES (1, 10), (2, 20), (3, 30)",
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			return err
		}
	}

	// Parameters: pgx sends a string as text, which PostgreSQL reads as
	// the enum or the bigint the statement wants.
	_, err = conn.Exec(ctx, "UPDATE pgx_payouts SET status = $1 WHERE id = ANY ($2)", "READY", []int64{1, 2, 3})
	check("a string parameter for an enum column", err == nil, err)
	var final bool
	err = conn.QueryRow(ctx, "SELECT payout.status_is_final($1)", "REVOKED").Scan(&final)
	check("payout.status_is_final($1) takes a string", err == nil && final, err)
	err = conn.QueryRow(ctx, "SELECT payout.is_final($1)", "REVOKED").Scan(&final)
	check("payout.is_final($1) is ambiguous (42725)", failsWith(err, "42725", ""), err)
	var group string
	err = conn.QueryRow(ctx, "SELECT payout.resolution_group_of($1)", "CONNECTION_ERROR").Scan(&group)
	check("payout.resolution_group_of($1) answers ERROR", err == nil && group == "ERROR", group)

	var key string
	if err = conn.QueryRow(ctx, "SELECT key FROM payout.claim('pgx_payouts', 1) AS key").Scan(&key); err != nil {
		return err
	}
	tag, err := conn.Exec(ctx, "UPDATE pgx_payouts SET status = 'PROCESSING', resolution = 'OK' WHERE id = $1", key)
	check("a claimed key (text) passed back for a bigint key", err == nil && tag.RowsAffected() == 1, err)

	// Reading enums: a string is fine, an interface{} is not until the
	// type is registered.
	var status string
	err = conn.QueryRow(ctx, "SELECT status FROM pgx_payouts WHERE id = 1").Scan(&status)
	check("an enum scans into a string", err == nil && status == "PROCESSING", status)
	var any interface{}
	err = conn.QueryRow(ctx, "SELECT status FROM pgx_payouts WHERE id = 1").Scan(&any)
	check("an enum does not scan into interface{} (unknown oid)", err != nil, any)
	var statuses []string
	err = conn.QueryRow(ctx, "SELECT payout.next_statuses($1)", "CREATED").Scan(&statuses)
	check("payout.status[] does not scan into []string (unknown oid)", err != nil, statuses)
	err = conn.QueryRow(ctx, "SELECT payout.next_statuses($1)::text[]", "CREATED").Scan(&statuses)
	check("payout.next_statuses()::text[] scans into []string",
		err == nil && reflect.DeepEqual(statuses, []string{"READY", "TERMINATED", "EXPIRED"}), statuses)
	if err = registerPayoutTypes(ctx, conn); err != nil {
		return err
	}
	err = conn.QueryRow(ctx, "SELECT status FROM pgx_payouts WHERE id = 1").Scan(&any)
	check("registered, an enum scans into interface{} as a string", err == nil && any == "PROCESSING", any)
	statuses = nil
	err = conn.QueryRow(ctx, "SELECT payout.next_statuses($1)", "CREATED").Scan(&statuses)
	check("registered, payout.status[] scans into []string",
		err == nil && reflect.DeepEqual(statuses, []string{"READY", "TERMINATED", "EXPIRED"}), err)

	// payout.history.tbl is a regclass, compared with a string parameter
	// as an oid: a name needs ::regclass.
	var same bool
	err = conn.QueryRow(ctx, "SELECT 'pgx_payouts'::regclass = $1", "pgx_payouts").Scan(&same)
	check("regclass = $1 with a table name fails (22P02: read as an oid)", failsWith(err, "22P02", ""), err)
	err = conn.QueryRow(ctx, "SELECT 'pgx_payouts'::regclass = $1::regclass", "pgx_payouts").Scan(&same)
	check("regclass = $1::regclass works", err == nil && same, err)

	// The rules' errors: a *pgconn.PgError, with the SQLSTATE and the rule.
	_, err = conn.Exec(ctx, "UPDATE pgx_payouts SET status = 'PROCESSED' WHERE id = 2")
	e := pgError(err)
	check("an illegal change is a *pgconn.PgError, 23514, payout_status_transition",
		failsWith(err, "23514", "payout_status_transition") && e.TableName == "pgx_payouts" && e.ColumnName == "status", err)
	if _, err = conn.Exec(ctx,
		"UPDATE pgx_payouts SET status = 'INVOKING', resolution = 'GENERAL_ERROR' WHERE id = 3"); err != nil {
		return err
	}
	_, err = conn.Exec(ctx, "UPDATE pgx_payouts SET status = 'PROCESSING' WHERE id = 3")
	check("the hold is a *pgconn.PgError, 42501, payout_moderation_hold",
		failsWith(err, "42501", "payout_moderation_hold"), err)

	_, err = conn.Exec(ctx, "DROP TABLE pgx_payouts")
	return err
}

func main() {
	if err := run(context.Background()); err != nil {
		check("no unexpected error", false, err)
	}
	if failures > 0 {
		os.Exit(1)
	}
}
