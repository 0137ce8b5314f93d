// C++ containers and streams, linked statically: libstdc++ inside the program (benchmarks/field_static.py).
#include <iostream>
#include <string>
#include <vector>
#include <map>
#include <sstream>
int main(int argc, char **argv) {
    std::vector<std::string> v(argv, argv + argc);
    std::map<std::string, int> m;
    for (auto &s : v) m[s] += (int)s.size();
    std::ostringstream o;
    for (auto &kv : m) o << kv.first << "=" << kv.second << "\n";
    std::cout << o.str();
    return 0;
}
