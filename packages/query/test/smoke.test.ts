import t from 'tap';
import { Db } from './harness.js';

t.test('smoke', async (t) => {
  const db = new Db();
  db.ok('CREATE TABLE p (id BIGINT PRIMARY KEY, name TEXT NOT NULL, age INTEGER, UNIQUE (name))');
  t.equal(db.ok('INSERT INTO p VALUES (1, ?, 30), ($2, $3, NULL)'.replace('?', "'ann'").replace('$2', '2').replace('$3', "'bob'")).rowsAffected, 2);
  t.same(db.rows('SELECT id, name FROM p ORDER BY id DESC'), [[2n, 'bob'], [1n, 'ann']]);
  t.same(db.rows('SELECT count(*), sum(age), avg(age) FROM p'), [[2n, 30n, 30]]);
});
