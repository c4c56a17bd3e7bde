// A payout table used from plain JDBC (pgjdbc), and what each piece of the
// guide's advice for Java does: prints "ok - ..." or "not ok - ..." for each.
//
//   PGHOST=... PGUSER=owner PGPASSWORD=... java -cp CLASSES:/usr/share/java/postgresql.jar:SPRING Checks
//
// SPRING: Debian's Spring JDBC 4.3 and what it needs (spring3-jdbc.jar,
// spring3-core.jar, spring3-beans.jar, spring3-transaction.jar,
// commons-logging.jar), for what Spring's exception translation makes of
// payout's errors.  The role creates a table, so it needs CREATE on schema
// public and, for the table to keep history, EXECUTE on
// payout.record_history(); it must not be a moderator (nor a superuser),
// to meet the hold.
import java.sql.Array;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.sql.Types;
import java.util.Arrays;
import java.util.Properties;

import org.postgresql.util.PSQLException;
import org.postgresql.util.ServerErrorMessage;
import org.springframework.dao.CannotSerializeTransactionException;
import org.springframework.dao.DataAccessException;
import org.springframework.dao.DataIntegrityViolationException;
import org.springframework.jdbc.BadSqlGrammarException;
import org.springframework.jdbc.support.SQLErrorCodeSQLExceptionTranslator;

public final class Checks {
    private static int failures = 0;

    private Checks() {
    }

    /** A statement that may fail: returns the SQLException, or null. */
    private interface Work {
        void run(Connection conn) throws SQLException;
    }

    private enum Status { CREATED, READY, INVOKING }

    private static void check(String description, boolean passed, Object got) {
        if (!passed) {
            failures++;
        }
        System.out.println((passed ? "ok" : "not ok") + " - jdbc: " + description
                + (passed ? "" : " (got " + got + ")"));
    }

    /**
     * A connection from libpq's environment variables: pgjdbc reads none of
     * them.  pgjdbc speaks TCP only, so a socket directory in PGHOST means
     * the server on localhost.
     */
    static Connection connect(boolean unspecified) throws SQLException {
        String host = System.getenv().getOrDefault("PGHOST", "localhost");
        if (host.startsWith("/")) {
            host = "localhost";
        }
        String port = System.getenv().getOrDefault("PGPORT", "5432");
        String user = System.getenv().getOrDefault("PGUSER", System.getProperty("user.name"));
        String db = System.getenv().getOrDefault("PGDATABASE", user);
        Properties props = new Properties();
        props.setProperty("user", user);
        if (System.getenv("PGPASSWORD") != null) {
            props.setProperty("password", System.getenv("PGPASSWORD"));
        }
        props.setProperty("ApplicationName", "jdbc-checks");
        if (unspecified) {
            // Strings go as parameters of no type, which PostgreSQL types
            // from the statement, as it does a quoted literal.
            props.setProperty("stringtype", "unspecified");
        }
        return DriverManager.getConnection("jdbc:postgresql://" + host + ":" + port + "/" + db, props);
    }

    /**
     * Runs work in a transaction of its own; returns what it threw, or null.
     * The connection is back in autocommit after it.
     */
    private static SQLException attempt(Connection conn, Work work) {
        try {
            conn.setAutoCommit(false);
            work.run(conn);
            conn.commit();
            return null;
        } catch (SQLException e) {
            try {
                conn.rollback();
            } catch (SQLException ignored) {
                // the connection is gone; the caller sees e
            }
            return e;
        } finally {
            try {
                conn.setAutoCommit(true);
            } catch (SQLException ignored) {
                // as above
            }
        }
    }

    private static String describe(SQLException e) {
        if (e == null) {
            return "no error";
        }
        return e.getClass().getSimpleName() + " " + e.getSQLState() + " " + constraint(e) + ": "
                + e.getMessage().split("\n")[0];
    }

    /** The rule's name: the constraint name field of the server's error. */
    static String constraint(SQLException e) {
        if (e instanceof PSQLException) {
            ServerErrorMessage m = ((PSQLException) e).getServerErrorMessage();
            return m == null ? null : m.getConstraint();
        }
        return null;
    }

    private static void update(Connection conn, String sql, Object... args) throws SQLException {
        try (PreparedStatement ps = conn.prepareStatement(sql)) {
            for (int i = 0; i < args.length; i++) {
                ps.setObject(i + 1, args[i]);
            }
            ps.executeUpdate();
        }
    }

    private static String queryString(Connection conn, String sql, Object... args) throws SQLException {
        try (PreparedStatement ps = conn.prepareStatement(sql)) {
            for (int i = 0; i < args.length; i++) {
                ps.setObject(i + 1, args[i]);
            }
            try (ResultSet rs = ps.executeQuery()) {
                return rs.next() ? rs.getString(1) : null;
            }
        }
    }

    public static void main(String[] args) {
        try {
            run();
        } catch (Exception e) {
            check("no unexpected error", false, e);
        }
        System.exit(failures == 0 ? 0 : 1);
    }

    private static void run() throws SQLException {
        try (Connection conn = connect(false); Connection unspecified = connect(true)) {
            try (Statement st = conn.createStatement()) {
                st.execute("DROP TABLE IF EXISTS jdbc_payouts");
                st.execute("CREATE TABLE jdbc_payouts ("
                        + " id bigint PRIMARY KEY,"
                        + " amount numeric NOT NULL,"
                        + " status payout.status NOT NULL DEFAULT 'CREATED',"
                        + " resolution payout.resolution,"
                        + " created_at timestamptz NOT NULL DEFAULT now())");
                st.execute("SELECT payout.attach('jdbc_payouts')");
                st.execute("INSERT INTO jdbc_payouts (id, amount) VALUES (1, 10), (2, 20), (3, 30)");
            }

            // pgjdbc sends a String as varchar, a type of its own.
            SQLException e = attempt(conn, c -> update(c,
                    "UPDATE jdbc_payouts SET status = ? WHERE id = 1", "READY"));
            check("setString() on an enum column fails with 42804", e != null
                    && "42804".equals(e.getSQLState()), describe(e));
            e = attempt(conn, c -> queryString(c, "SELECT payout.status_is_final(?)", "READY"));
            check("setString() for a function's enum argument fails with 42883", e != null
                    && "42883".equals(e.getSQLState()), describe(e));

            // Three ways around it.
            e = attempt(unspecified, c -> update(c,
                    "UPDATE jdbc_payouts SET status = ? WHERE id = 1", "READY"));
            check("with stringtype=unspecified, setString() on an enum column works", e == null, describe(e));
            e = attempt(conn, c -> update(c,
                    "UPDATE jdbc_payouts SET status = ?::payout.status WHERE id = 2", "READY"));
            check("?::payout.status works", e == null, describe(e));
            e = attempt(conn, c -> {
                try (PreparedStatement ps = c.prepareStatement(
                        "UPDATE jdbc_payouts SET status = ? WHERE id = 3")) {
                    ps.setObject(1, Status.READY.name(), Types.OTHER);
                    ps.executeUpdate();
                }
            });
            check("setObject(i, enum.name(), Types.OTHER) works", e == null, describe(e));
            String finalStatus = queryString(unspecified, "SELECT payout.status_is_final(?)", "REVOKED");
            check("with stringtype=unspecified, payout.status_is_final(?) takes a String",
                    "t".equals(finalStatus), finalStatus);
            e = attempt(unspecified, c -> queryString(c, "SELECT payout.is_final(?)", "REVOKED"));
            check("payout.is_final(?) is ambiguous with an untyped parameter (42725)", e != null
                    && "42725".equals(e.getSQLState()), describe(e));

            // A key from claim() is text.
            String key = queryString(conn, "SELECT key FROM payout.claim('jdbc_payouts', 1) AS key");
            e = attempt(conn, c -> update(c,
                    "UPDATE jdbc_payouts SET status = 'PROCESSING', resolution = 'OK' WHERE id = ?", key));
            check("a claimed key passed back with setString() fails (bigint = character varying, 42883)",
                    e != null && "42883".equals(e.getSQLState()), describe(e));
            e = attempt(unspecified, c -> update(c,
                    "UPDATE jdbc_payouts SET status = 'PROCESSING', resolution = 'OK' WHERE id = ?", key));
            check("... and works with stringtype=unspecified", e == null, describe(e));
            e = attempt(conn, c -> queryString(c, "SELECT payout.expire('jdbc_payouts', ?)", "1 day"));
            check("payout.expire(tbl, ?) with a String interval fails (42883)", e != null
                    && "42883".equals(e.getSQLState()), describe(e));
            String expired = queryString(conn, "SELECT payout.expire('jdbc_payouts', ?::interval)", "1 day");
            check("... and works with ?::interval", "0".equals(expired), expired);

            // resolution_group(?) with a varchar is a cast to the type of that name.
            e = attempt(conn, c -> queryString(c, "SELECT payout.resolution_group(?)", "CONNECTION_ERROR"));
            check("payout.resolution_group(?) with a varchar is a cast (22P02)", e != null
                    && "22P02".equals(e.getSQLState()), describe(e));
            String group = queryString(unspecified, "SELECT payout.resolution_group_of(?)", "CONNECTION_ERROR");
            check("payout.resolution_group_of(?) answers ERROR", "ERROR".equals(group), group);

            // Arrays of the extension's types.
            try (PreparedStatement ps = unspecified.prepareStatement("SELECT payout.next_statuses(?)")) {
                ps.setString(1, "CREATED");
                try (ResultSet rs = ps.executeQuery()) {
                    rs.next();
                    Array array = rs.getArray(1);
                    Object value = array.getArray();
                    check("getArray() of payout.status[] is a String[]", value instanceof String[]
                            && Arrays.equals((String[]) value, new String[] {"READY", "TERMINATED", "EXPIRED"}),
                            value instanceof Object[] ? Arrays.toString((Object[]) value) : value);
                }
            }

            // payout.history.tbl is a regclass, compared with an untyped
            // parameter as an oid: a name needs ::regclass.
            e = attempt(unspecified, c -> queryString(c, "SELECT 'jdbc_payouts'::regclass = ?", "jdbc_payouts"));
            check("regclass = ? with a table name fails (22P02: read as an oid)", e != null
                    && "22P02".equals(e.getSQLState()), describe(e));
            String same = queryString(conn, "SELECT 'jdbc_payouts'::regclass = ?::regclass", "jdbc_payouts");
            check("regclass = ?::regclass works", "t".equals(same), same);

            // The rules' errors: a PSQLException, with the SQLSTATE and the rule.
            e = attempt(conn, c -> update(c, "UPDATE jdbc_payouts SET status = 'PROCESSED' WHERE id = 2"));
            check("an illegal change is a PSQLException, 23514, payout_status_transition",
                    e instanceof PSQLException && "23514".equals(e.getSQLState())
                    && "payout_status_transition".equals(constraint(e)), describe(e));
            SQLException illegal = e;

            // An ERROR resolution holds payout 3 from the commit on.
            attempt(conn, c -> update(c,
                    "UPDATE jdbc_payouts SET status = 'INVOKING', resolution = 'GENERAL_ERROR' WHERE id = 3"));
            e = attempt(conn, c -> update(c, "UPDATE jdbc_payouts SET status = 'PROCESSING' WHERE id = 3"));
            check("the hold is a PSQLException, 42501, payout_moderation_hold",
                    e instanceof PSQLException && "42501".equals(e.getSQLState())
                    && "payout_moderation_hold".equals(constraint(e)), describe(e));
            SQLException hold = e;

            // What Spring's translation makes of them.
            SQLErrorCodeSQLExceptionTranslator spring = new SQLErrorCodeSQLExceptionTranslator("PostgreSQL");
            DataAccessException t = spring.translate("update", null, illegal);
            check("Spring translates 23514 to DataIntegrityViolationException",
                    t instanceof DataIntegrityViolationException, t == null ? null : t.getClass().getName());
            t = spring.translate("update", null, hold);
            check("Spring translates the hold's 42501 to BadSqlGrammarException",
                    t instanceof BadSqlGrammarException, t == null ? null : t.getClass().getName());
            check("... whose cause still gives the rule",
                    t != null && t.getCause() instanceof SQLException
                    && "payout_moderation_hold".equals(constraint((SQLException) t.getCause())),
                    t == null ? null : t.getCause());

            // A serialization failure, raised with its SQLSTATE: Spring's
            // class follows the SQLSTATE, whoever raises it.
            e = attempt(conn, c -> update(c,
                    "DO $$ BEGIN RAISE EXCEPTION 'x' USING ERRCODE = '40001'; END $$"));
            t = e == null ? null : spring.translate("update", null, e);
            check("Spring translates 40001 to CannotSerializeTransactionException",
                    t instanceof CannotSerializeTransactionException, t == null ? null : t.getClass().getName());

            try (Statement st = conn.createStatement()) {
                st.execute("DROP TABLE jdbc_payouts");
            }
        }
    }
}
