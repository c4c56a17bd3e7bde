// A moderator's back office in Java with plain JDBC (pgjdbc), where each
// member of staff has a database role of their own and the back office
// connects as one pool role that takes on the role of whoever decides.
//
//   PGHOST=... PGUSER=backoffice PGPASSWORD=... java -cp CLASSES:/usr/share/java/postgresql.jar Moderator NAME STAFF_ROLE...
//
// The pool role (PGUSER) is NOINHERIT and a member of each STAFF_ROLE, and
// each STAFF_ROLE a member of the role payout.moderator_role names, which
// has the application's grants on the table: the pool alone can do nothing
// with the table, and every decision is made, and recorded in
// payout.history.user_name, as the staff member's role, with the pool as
// session_user_name.  Which staff role the pool takes is the back office's
// word: the database authenticated the pool, not the person.
//
// A person decides in a real back office; here a rule stands in for one,
// and the staff roles take turns: payouts whose key ends in 13 are ended
// (the recipient cannot be paid), the others released, to be processed.
// Several moderators may work at once: each decision is an UPDATE that only
// changes a payout still held, so a payout another moderator decided first
// is left alone.  Stop it with SIGTERM or SIGINT.
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

public final class Moderator {
    private static volatile boolean stopping = false;

    static final String QUEUE = "SELECT id::text, status, resolution, note FROM payouts"
            + " WHERE payout.requires_moderation(status, resolution)"
            + " ORDER BY resolution, created_at LIMIT 50";

    // Released with resolution OK; the processors pick the payout up again.
    static final String RELEASE = "UPDATE payouts SET resolution = 'OK'"
            + " WHERE id = ? AND payout.requires_moderation(status, resolution)";

    // Ended with a fatal resolution and the failure status of its stage.
    static final String END = "UPDATE payouts"
            + " SET resolution = 'GENERAL_FATAL_ERROR', status = payout.failure_status(status)"
            + " WHERE id = ? AND payout.requires_moderation(status, resolution)";

    private final String name;
    private final List<String> staff;
    private int turn = 0;

    private Moderator(String name, List<String> staff) {
        this.name = name;
        this.staff = staff;
    }

    private void log(String message) {
        System.out.println(name + ": " + message);
    }

    /**
     * Takes on a staff member's role for the rest of the transaction, as
     * SET LOCAL ROLE does; set_config() takes the name as a parameter.
     * The pool is back to itself at COMMIT or ROLLBACK.
     */
    private static void actAs(Connection conn, String role) throws SQLException {
        try (PreparedStatement ps = conn.prepareStatement("SELECT set_config('role', ?, true)")) {
            ps.setString(1, role);
            ps.executeQuery().close();
        }
    }

    /** Decides every payout of the queue once; returns how many it decided. */
    private int moderate(Connection conn) throws SQLException {
        List<String[]> queue = new ArrayList<>();
        actAs(conn, staff.get(0));
        try (PreparedStatement ps = conn.prepareStatement(QUEUE); ResultSet rs = ps.executeQuery()) {
            while (rs.next()) {
                queue.add(new String[] {rs.getString(1), rs.getString(2), rs.getString(3), rs.getString(4)});
            }
        }
        conn.commit();
        int decided = 0;
        for (String[] p : queue) {
            String key = p[0];
            boolean end = key.endsWith("13");
            String role = staff.get(turn++ % staff.size());
            actAs(conn, role);
            int rows;
            try (PreparedStatement ps = conn.prepareStatement(end ? END : RELEASE)) {
                ps.setString(1, key);
                rows = ps.executeUpdate();
            }
            conn.commit();
            if (rows == 1) {
                decided++;
                log((end ? "ended" : "released") + " payout " + key + " as " + role + " (" + p[1] + ", " + p[2]
                        + (p[3] != null ? ", note: " + p[3] : "") + ")");
            }
        }
        return decided;
    }

    private void run() throws InterruptedException {
        Connection conn = null;
        while (!stopping) {
            try {
                if (conn == null) {
                    conn = Processor.connect(name);
                }
                // No channel announces holds: look at the queue now and then.
                if (moderate(conn) == 0) {
                    Thread.sleep(300);
                }
            } catch (SQLException e) {
                log("connection lost (" + e.getSQLState() + "): reconnecting");
                if (conn != null) {
                    try {
                        conn.close();
                    } catch (SQLException ignored) {
                        // closing a lost connection
                    }
                }
                conn = null;
                Thread.sleep(500);
            }
        }
        if (conn != null) {
            try {
                conn.close();
            } catch (SQLException ignored) {
                // stopping anyway
            }
        }
        log("stopped");
    }

    public static void main(String[] args) throws InterruptedException {
        if (args.length < 2) {
            System.err.println("usage: Moderator NAME STAFF_ROLE...");
            System.exit(2);
        }
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
        new Moderator(args[0], Arrays.asList(args).subList(1, args.length)).run();
    }
}
