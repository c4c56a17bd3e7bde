// A payout processor in Java with plain JDBC (pgjdbc): claims payouts and
// drives them through a payment provider, here a fake one.
//
//   PGHOST=... PGUSER=processor PGPASSWORD=... java -cp CLASSES:/usr/share/java/postgresql.jar Processor [--manual] [NAME]
//
// Connects with libpq's environment variables, read here: pgjdbc reads
// none of them.  --manual makes it an operator's processor: it claims
// manual payouts (payout.claim(..., manual => true)) and listens on
// payout_manual; the role must be an operator.
//
// Each payout is claimed and driven in one transaction, so the claim's row
// lock covers the provider call: nobody else touches the payout meanwhile,
// and if the connection is lost, PostgreSQL rolls the claim back and the
// payout is READY for the next claim.  The provider is called with the
// payout's key as idempotency key, so a second call after such a rollback
// gets the first call's answer.  Stop it with SIGTERM or SIGINT.
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.sql.Types;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;

import org.postgresql.PGConnection;
import org.postgresql.util.PSQLException;
import org.postgresql.util.ServerErrorMessage;

public final class Processor {
    static final String TABLE = "public.payouts"; // as notifications name it
    static final String PROVIDER = "fakepay"; // a provider of payout.provider_code
    static final String HOLD = "payout_moderation_hold";

    private static volatile boolean stopping = false;

    private final boolean manual;
    private final String name;
    private final String channel;

    private Processor(boolean manual, String name) {
        this.manual = manual;
        this.name = name;
        this.channel = manual ? "payout_manual" : "payout_ready";
    }

    private void log(String message) {
        System.out.println(name + ": " + message);
    }

    /** What the fake provider answers: as payout.classify() takes it. */
    private static final class Answer {
        final String code;
        final Integer httpStatus;
        final boolean timedOut;

        Answer(String code, Integer httpStatus, boolean timedOut) {
            this.code = code;
            this.httpStatus = httpStatus;
            this.timedOut = timedOut;
        }
    }

    /**
     * Answers by key, the same every time for the same key (an idempotent
     * provider): keys ending in 7 lack funds, keys ending in 3 time out at
     * the first call and are registered at the next one.
     */
    private static Answer register(String key, boolean retry) {
        long k = Long.parseLong(key);
        if (k % 10 == 7) {
            return new Answer("E_FUNDS", 200, false);
        }
        if (k % 10 == 3 && !retry) {
            return new Answer(null, null, true);
        }
        return new Answer("0", 200, false);
    }

    /** Whether the provider, after a timeout, calls back to say the payout went through after all. */
    private static boolean confirmsLate(String key) {
        return Long.parseLong(key) % 20 == 3;
    }

    /**
     * The connection: pgjdbc sends a String parameter as varchar, which
     * neither an enum column nor a bigint key takes; stringtype=unspecified
     * sends it untyped, and PostgreSQL types it from the statement, as it
     * does a quoted literal.  pgjdbc speaks TCP only, so a socket directory
     * in PGHOST means the server on localhost.
     */
    static Connection connect(String applicationName) throws SQLException {
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
        props.setProperty("ApplicationName", applicationName);
        props.setProperty("stringtype", "unspecified");
        Connection conn = DriverManager.getConnection("jdbc:postgresql://" + host + ":" + port + "/" + db, props);
        conn.setAutoCommit(false);
        return conn;
    }

    /** The rule's name: the constraint name field of the server's error. */
    static String constraint(SQLException e) {
        if (e instanceof PSQLException) {
            ServerErrorMessage m = ((PSQLException) e).getServerErrorMessage();
            return m == null ? null : m.getConstraint();
        }
        return null;
    }

    private static int update(Connection conn, String sql, Object... args) throws SQLException {
        try (PreparedStatement ps = conn.prepareStatement(sql)) {
            for (int i = 0; i < args.length; i++) {
                ps.setObject(i + 1, args[i]);
            }
            return ps.executeUpdate();
        }
    }

    /**
     * Moves one payout that this transaction has locked on, until it is
     * done or held.  Returns "processed", "failed" or "held".
     */
    private String drive(Connection conn, String key, String status, String resolution) throws SQLException {
        if (status.equals("INVOKING")) {
            // A payout released by a moderator has resolution OK: call again.
            Answer answer = register(key, resolution != null);
            String group;
            try (PreparedStatement ps = conn.prepareStatement(
                    "SELECT r, payout.resolution_group_of(r) FROM payout.classify(?, ?, ?, ?) AS r")) {
                ps.setString(1, PROVIDER);
                ps.setString(2, answer.code);
                if (answer.httpStatus == null) {
                    ps.setNull(3, Types.INTEGER);
                } else {
                    ps.setInt(3, answer.httpStatus);
                }
                ps.setBoolean(4, answer.timedOut);
                try (ResultSet rs = ps.executeQuery()) {
                    rs.next();
                    resolution = rs.getString(1);
                    group = rs.getString(2);
                }
            }
            if (group.equals("FATAL_ERROR")) {
                // A fatal resolution needs a final status in the same statement.
                update(conn, "UPDATE payouts SET resolution = ?, status = payout.failure_status(status)"
                        + " WHERE id = ?", resolution, key);
                return "failed";
            }
            if (group.equals("ERROR")) {
                // From the commit on, the payout is held for a moderator.
                update(conn, "UPDATE payouts SET resolution = ? WHERE id = ?", resolution, key);
                return "held";
            }
            update(conn, "UPDATE payouts SET status = 'PROCESSING', resolution = 'OK' WHERE id = ?", key);
        }
        // PROCESSING or PENDING: the fake provider has always paid by now.
        update(conn, "UPDATE payouts SET status = 'PROCESSED' WHERE id = ?", key);
        return "processed";
    }

    /** Claims one payout and drives it, in one transaction; returns {key, outcome} or null. */
    private String[] claimOne(Connection conn) throws SQLException {
        String key = null;
        try (PreparedStatement ps = conn.prepareStatement(
                "SELECT key FROM payout.claim(?, 1, manual => ?) AS key")) {
            ps.setString(1, TABLE);
            ps.setBoolean(2, manual);
            try (ResultSet rs = ps.executeQuery()) {
                if (rs.next()) {
                    key = rs.getString(1);
                }
            }
        }
        String outcome = key == null ? null : drive(conn, key, "INVOKING", null);
        conn.commit();
        return key == null ? null : new String[] {key, outcome};
    }

    /**
     * Drives on one payout that a moderator released (or that nobody works
     * on for another reason): one in a processing status, not held, and not
     * locked, since every payout being worked on is locked by its
     * processor's transaction.  Returns {key, outcome} or null.
     */
    private String[] resumeOne(Connection conn) throws SQLException {
        String key = null;
        String status = null;
        String resolution = null;
        try (PreparedStatement ps = conn.prepareStatement(
                "SELECT id::text, status, resolution FROM payouts"
                + " WHERE status IN ('INVOKING', 'PROCESSING', 'PENDING')"
                + "   AND NOT payout.requires_moderation(status, resolution)"
                + "   AND autoprocess = ?"
                + " ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED")) {
            ps.setBoolean(1, !manual);
            try (ResultSet rs = ps.executeQuery()) {
                if (rs.next()) {
                    key = rs.getString(1);
                    status = rs.getString(2);
                    resolution = rs.getString(3);
                }
            }
        }
        String outcome = key == null ? null : drive(conn, key, status, resolution);
        conn.commit();
        return key == null ? null : new String[] {key, outcome};
    }

    /**
     * The provider says a payout that timed out went through.  Record it,
     * unless the payout is held: then only a moderator may change it, so
     * leave the news in a note (other columns of a held payout may change).
     */
    private void providerCallback(Connection conn, String key) throws SQLException {
        try {
            update(conn, "UPDATE payouts SET status = 'PROCESSING', resolution = 'OK'"
                    + " WHERE id = ? AND status = 'INVOKING'", key);
            conn.commit();
        } catch (SQLException e) {
            // 42501 is also "permission denied": only the hold is expected here.
            if (!"42501".equals(e.getSQLState()) || !HOLD.equals(constraint(e))) {
                throw e;
            }
            conn.rollback();
            update(conn, "UPDATE payouts SET note = ? WHERE id = ?",
                    "the provider confirmed the payout after the timeout", key);
            conn.commit();
            log("payout " + key + " is held (42501 " + HOLD + "): left a note for the moderators");
        }
    }

    /** Claims and resumes payouts until there are none left. */
    private void drain(Connection conn) throws SQLException {
        while (!stopping) {
            String[] done = claimOne(conn);
            if (done == null) {
                done = resumeOne(conn);
            }
            if (done == null) {
                return;
            }
            if (done[1].equals("held") && confirmsLate(done[0])) {
                providerCallback(conn, done[0]);
            }
        }
    }

    private void serve(Connection conn) throws SQLException {
        try (Statement st = conn.createStatement()) {
            st.execute("LISTEN " + channel);
        }
        conn.commit();
        // Nothing was queued for us while we were not listening: look now.
        drain(conn);
        PGConnection pg = conn.unwrap(PGConnection.class);
        while (!stopping) {
            // Wake up for a notification, or every second anyway: a release
            // in another status than READY, or one missed while
            // reconnecting, is found by looking.
            // A notification is a hint, which any role may send: it only
            // says when to look, and this processor looks only at the table
            // it serves, whatever table a payload names.
            pg.getNotifications(1000);
            drain(conn);
        }
    }

    /** Whether the error means the connection is gone rather than one transaction. */
    private static boolean lost(Connection conn, SQLException e) {
        String state = e.getSQLState();
        if (conn == null || state == null || state.startsWith("08") || state.equals("57P01")) {
            return true;
        }
        try {
            conn.rollback();
            return false;
        } catch (SQLException again) {
            return true;
        }
    }

    private void run() throws InterruptedException {
        Connection conn = null;
        while (!stopping) {
            try {
                if (conn == null) {
                    conn = connect(name);
                    log("connected");
                }
                serve(conn);
            } catch (SQLException e) {
                // 40001 and 40P01 cost the transaction only: roll back and
                // go on.  A lost connection takes the transaction with it,
                // claim and all: start again on a fresh one.
                if (!lost(conn, e)) {
                    continue;
                }
                String first = String.valueOf(e.getMessage()).split("\n")[0];
                log("connection lost (" + (e.getSQLState() != null ? e.getSQLState() : first) + "): reconnecting");
                close(conn);
                conn = null;
                Thread.sleep(500);
            }
        }
        close(conn);
        log("stopped");
    }

    private static void close(Connection conn) {
        if (conn != null) {
            try {
                conn.close();
            } catch (SQLException ignored) {
                // closing a lost connection
            }
        }
    }

    /**
     * Stops on SIGTERM and SIGINT after the payout at hand: the JVM runs
     * the shutdown hook, which waits for the loop to end and exits 0.
     */
    static void stopOnSignal() {
        Thread main = Thread.currentThread();
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            stopping = true;
            try {
                main.join(10000);
            } catch (InterruptedException ignored) {
                // exit anyway
            }
            System.out.flush();
            Runtime.getRuntime().halt(0);
        }));
    }

    public static void main(String[] args) throws InterruptedException {
        boolean manual = false;
        List<String> names = new ArrayList<>();
        for (String a : args) {
            if (a.equals("--manual")) {
                manual = true;
            } else {
                names.add(a);
            }
        }
        stopOnSignal();
        new Processor(manual, names.isEmpty() ? "processor" : names.get(0)).run();
    }
}
