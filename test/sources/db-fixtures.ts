/**
 * Test-side access to the private PostgreSQL and MariaDB servers (test/services/databases.ts):
 * SQL through psql / mariadb, generated schemas and data, and fingerprints (schema text, row counts,
 * per-table checksums) to compare a restored database with its original.
 */
import { createHash } from 'node:crypto';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';

export interface Server {
  host: string;
  port: number;
  user: string;
  password: string;
}

function need(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: the vitest global setup starts the database servers (test/services/databases.ts)`);
  return v;
}

export function pgServer(): Server {
  return { host: need('PG_TEST_HOST'), port: Number(need('PG_TEST_PORT')), user: need('PG_TEST_USER'), password: need('PG_TEST_PASSWORD') };
}

export function mariadbServer(): Server {
  return { host: need('MARIADB_TEST_HOST'), port: Number(need('MARIADB_TEST_PORT')), user: need('MARIADB_TEST_USER'), password: need('MARIADB_TEST_PASSWORD') };
}

export const uniqueName = (prefix: string) => `${prefix}_${crypto.randomBytes(4).toString('hex')}`;

// ---------------------------------------------------------------- PostgreSQL

export function psql(s: Server, db: string, sql: string): string {
  return execFileSync('psql', ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', s.host, '-p', String(s.port), '-U', s.user, '-d', db], {
    input: sql,
    env: { ...process.env, PGPASSWORD: s.password },
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  });
}

export function pgDatabases(s: Server): string[] {
  return psql(s, 'postgres', 'SELECT datname FROM pg_database ORDER BY 1').trim().split('\n');
}

/** A database with three tables (numbers, text with quotes and newlines, NULLs, bytea, json, timestamps), a view, a function and a trigger. */
export function pgCreate(s: Server, db: string, rows = 2000): void {
  psql(s, 'postgres', `CREATE DATABASE "${db}"`);
  psql(
    s,
    db,
    `
CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, email text UNIQUE, created timestamptz NOT NULL DEFAULT '2026-01-01', notes text);
CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id int REFERENCES customers(id), amount numeric(12,2), items jsonb, paid boolean, blob bytea);
CREATE TABLE audit (id bigserial PRIMARY KEY, order_id bigint, at timestamptz DEFAULT '2026-01-01');
CREATE INDEX orders_customer ON orders (customer_id);
CREATE VIEW big_orders AS SELECT * FROM orders WHERE amount > 500;
CREATE FUNCTION log_order() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO audit (order_id) VALUES (NEW.id); RETURN NEW; END $$;
CREATE TRIGGER orders_audit AFTER INSERT ON orders FOR EACH ROW EXECUTE FUNCTION log_order();
INSERT INTO customers (name, email, notes)
  SELECT 'customer ' || g || E' O''Brien\\n"quoted"', 'c' || g || '@example.org', CASE WHEN g % 7 = 0 THEN NULL ELSE repeat('note ', g % 13) END
  FROM generate_series(1, ${rows}) g;
INSERT INTO orders (customer_id, amount, items, paid, blob)
  SELECT 1 + (g * 7919) % ${rows}, (g * 37 % 100000) / 100.0, jsonb_build_object('sku', 'S' || g, 'qty', g % 5),
         g % 2 = 0, decode(md5(g::text), 'hex')
  FROM generate_series(1, ${rows * 3}) g;
`,
  );
}

/**
 * SHA-256 of a plain pg_dump's bytes without the random `\restrict` key pg_dump 15.14+ writes into
 * every dump: two dumps of the same data compare equal.
 */
export function pgDumpDigest(dump: Buffer): string {
  const text = dump.toString('utf8').split('\n').filter((l) => !/^\\(un)?restrict /.test(l)).join('\n');
  return createHash('sha256').update(text).digest('hex');
}

const stripDumpNoise = (text: string) =>
  text
    .split('\n')
    .filter((l) => !l.startsWith('--') && !l.startsWith('\\restrict') && !l.startsWith('\\unrestrict') && l.trim() !== '')
    .join('\n');

/** Schema text plus, per table, the row count and an md5 over all rows in key order. */
export function pgFingerprint(s: Server, db: string): { schema: string; tables: Record<string, string> } {
  const schema = stripDumpNoise(
    execFileSync('pg_dump', ['--schema-only', '--no-owner', '-h', s.host, '-p', String(s.port), '-U', s.user, '-d', db], {
      env: { ...process.env, PGPASSWORD: s.password },
      encoding: 'utf8',
    }),
  );
  const tables: Record<string, string> = {};
  for (const t of psql(s, db, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1").trim().split('\n').filter(Boolean)) {
    tables[t] = psql(s, db, `SELECT count(*) || ':' || coalesce(md5(string_agg(x::text, '|' ORDER BY x.id)), '') FROM "${t}" x`).trim();
  }
  return { schema, tables };
}

// ---------------------------------------------------------------- MariaDB

export function mariadb(s: Server, sql: string, db?: string): string {
  return execFileSync('mariadb', ['--no-defaults', '--batch', '--skip-column-names', '-h', s.host, '-P', String(s.port), '-u', s.user, ...(db ? [db] : [])], {
    input: sql,
    env: { ...process.env, MYSQL_PWD: s.password },
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  });
}

export function myDatabases(s: Server): string[] {
  return mariadb(s, 'SHOW DATABASES').trim().split('\n');
}

/** A database with tables (InnoDB), a view, a procedure, a trigger and an event. */
export function myCreate(s: Server, db: string, rows = 2000): void {
  mariadb(s, `CREATE DATABASE \`${db}\` CHARACTER SET utf8mb4`);
  mariadb(
    s,
    `
CREATE TABLE customers (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(100) NOT NULL, email VARCHAR(100) UNIQUE, notes TEXT, created DATETIME NOT NULL DEFAULT '2026-01-01 00:00:00') ENGINE=InnoDB;
CREATE TABLE orders (id BIGINT PRIMARY KEY AUTO_INCREMENT, customer_id INT, amount DECIMAL(12,2), paid BOOL, blob_data BLOB, FOREIGN KEY (customer_id) REFERENCES customers(id)) ENGINE=InnoDB;
CREATE TABLE audit (id BIGINT PRIMARY KEY AUTO_INCREMENT, order_id BIGINT) ENGINE=InnoDB;
CREATE VIEW big_orders AS SELECT * FROM orders WHERE amount > 500;
CREATE TRIGGER orders_audit AFTER INSERT ON orders FOR EACH ROW INSERT INTO audit (order_id) VALUES (NEW.id);
CREATE PROCEDURE order_count() SELECT COUNT(*) FROM orders;
CREATE EVENT nightly ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01 00:00:00' DISABLE DO DELETE FROM audit WHERE id < 0;
INSERT INTO customers (name, email, notes)
  SELECT CONCAT('customer ', seq, ' O''Brien \\n "q"'), CONCAT('c', seq, '@example.org'), IF(seq % 7 = 0, NULL, REPEAT('note ', seq % 13)) FROM seq_1_to_${rows};
INSERT INTO orders (customer_id, amount, paid, blob_data)
  SELECT 1 + (seq * 7919) % ${rows}, (seq * 37 % 100000) / 100.0, seq % 2 = 0, UNHEX(MD5(seq)) FROM seq_1_to_${rows * 3};
`,
    db,
  );
}

export function myFingerprint(s: Server, db: string): { schema: string[]; tables: Record<string, string> } {
  const tables: Record<string, string> = {};
  const schema: string[] = [];
  const names = mariadb(s, "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() ORDER BY 1", db).trim().split('\n').filter(Boolean);
  for (const line of names) {
    const [t, type] = line.split('\t') as [string, string];
    if (type === 'VIEW') {
      schema.push(mariadb(s, `SELECT VIEW_DEFINITION FROM information_schema.VIEWS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '${t}'`, db).replace(new RegExp(`\`${db}\`\\.`, 'g'), ''));
      continue;
    }
    schema.push(mariadb(s, `SHOW CREATE TABLE \`${t}\``, db).replace(/AUTO_INCREMENT=\d+ /, ''));
    const count = mariadb(s, `SELECT COUNT(*) FROM \`${t}\``, db).trim();
    const sum = mariadb(s, `CHECKSUM TABLE \`${t}\``, db).trim().split('\t')[1];
    tables[t] = `${count}:${sum}`;
  }
  schema.push(mariadb(s, 'SELECT ROUTINE_NAME, ROUTINE_TYPE, ROUTINE_DEFINITION FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE() ORDER BY 1', db));
  schema.push(mariadb(s, 'SELECT TRIGGER_NAME, ACTION_STATEMENT FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() ORDER BY 1', db));
  schema.push(mariadb(s, 'SELECT EVENT_NAME, EVENT_DEFINITION, STATUS FROM information_schema.EVENTS WHERE EVENT_SCHEMA = DATABASE() ORDER BY 1', db));
  return { schema, tables };
}

// ---------------------------------------------------------------- processes

/** Waits until a process whose argv matches appears; returns its pid and argv. */
export async function waitForProcess(match: (argv: string[]) => boolean, timeoutMs = 30_000): Promise<{ pid: number; argv: string[]; environ: string[] }> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    for (const entry of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const argv = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').filter(Boolean);
        if (argv.length && match(argv)) {
          const environ = fs.readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0').filter(Boolean);
          return { pid: Number(entry), argv, environ };
        }
      } catch {
        // gone
      }
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('process did not appear');
}

/** A psql or mariadb session that holds a lock (the SQL must take it, then sleep) until killed. */
export function holdLock(argv: string[], sql: string, env: NodeJS.ProcessEnv): ChildProcess {
  const child = spawn(argv[0]!, argv.slice(1), { env, stdio: ['pipe', 'ignore', 'ignore'] });
  child.stdin!.end(sql);
  return child;
}
