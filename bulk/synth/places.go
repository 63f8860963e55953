package synth

// place is a city with its county (emitted as Address.district) and the
// first three digits of its ZIP codes.
type place struct {
	city, county, state, zip3 string
}

var places = []place{
	{"Los Angeles", "Los Angeles County", "CA", "900"}, {"San Jose", "Santa Clara County", "CA", "951"},
	{"Fresno", "Fresno County", "CA", "937"}, {"Houston", "Harris County", "TX", "770"},
	{"San Antonio", "Bexar County", "TX", "782"}, {"El Paso", "El Paso County", "TX", "799"},
	{"Miami", "Miami-Dade County", "FL", "331"}, {"Orlando", "Orange County", "FL", "328"},
	{"New York", "New York County", "NY", "100"}, {"Brooklyn", "Kings County", "NY", "112"},
	{"Chicago", "Cook County", "IL", "606"}, {"Atlanta", "Fulton County", "GA", "303"},
	{"Detroit", "Wayne County", "MI", "482"}, {"Philadelphia", "Philadelphia County", "PA", "191"},
	{"Phoenix", "Maricopa County", "AZ", "850"}, {"Seattle", "King County", "WA", "981"},
	{"Boston", "Suffolk County", "MA", "021"}, {"Baltimore", "Baltimore City", "MD", "212"},
	{"Memphis", "Shelby County", "TN", "381"}, {"Jackson", "Hinds County", "MS", "392"},
	{"Albuquerque", "Bernalillo County", "NM", "871"}, {"Gallup", "McKinley County", "NM", "873"},
	{"Honolulu", "Honolulu County", "HI", "968"}, {"Minneapolis", "Hennepin County", "MN", "554"},
	{"Columbus", "Franklin County", "OH", "432"}, {"Denver", "Denver County", "CO", "802"},
	{"Charlotte", "Mecklenburg County", "NC", "282"}, {"New Orleans", "Orleans Parish", "LA", "701"},
	{"Des Moines", "Polk County", "IA", "503"}, {"Portland", "Multnomah County", "OR", "972"},
	{"Billings", "Yellowstone County", "MT", "591"}, {"Rapid City", "Pennington County", "SD", "577"},
}

// Where members of some groups more often live, so geography and group
// are correlated as they are in real service areas (indexes into places).
var groupPlaces = map[string][]int{
	"hispanic": {0, 2, 3, 4, 5, 6, 10, 14, 20},
	RaceBlack:  {3, 6, 9, 11, 12, 13, 17, 18, 19, 27},
	RaceAsian:  {0, 1, 8, 9, 15, 22},
	RaceAIAN:   {14, 20, 21, 30, 31},
	RaceNHPI:   {22, 15},
}

var streets = []string{"Main St", "Oak Ave", "Maple Dr", "Cedar Ln", "Elm St", "Washington Blvd", "Lincoln Ave",
	"Park Rd", "Lakeview Dr", "Hillcrest Ave", "Sunset Blvd", "Church St", "Mill Rd", "River Rd", "Highland Ave",
	"Jefferson St", "Chavez Ave", "King Dr", "Pine St", "Walnut St"}

// Name pools by cultural background; "general" backs up every group.
var (
	familyNames = map[string][]string{
		"general":  {"Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Thompson", "White", "Harris", "Clark", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright", "Scott", "Hill", "Green", "Adams", "Baker", "Nelson", "Carter", "Mitchell", "Roberts", "Campbell", "Evans", "Edwards", "Collins", "Stewart", "Morris", "O'Brien", "Murphy", "Kowalski", "Schmidt", "Novak"},
		"hispanic": {"Garcia", "Rodriguez", "Martinez", "Hernandez", "Lopez", "Gonzalez", "Perez", "Sanchez", "Ramirez", "Torres", "Flores", "Rivera", "Gomez", "Diaz", "Reyes", "Morales", "Cruz", "Ortiz", "Gutierrez", "Chavez", "Peña", "Muñoz"},
		"zh":       {"Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou"},
		"vi":       {"Nguyen", "Tran", "Le", "Pham", "Hoang", "Phan", "Vu", "Dang"},
		"ko":       {"Kim", "Lee", "Park", "Choi", "Jung"},
		"asian":    {"Patel", "Shah", "Singh", "Santos", "Reyes", "Tanaka", "Sato", "Kim", "Nguyen", "Chen"},
		"aian":     {"Begay", "Yazzie", "Benally", "Tsosie", "Nez", "Chee"},
		"nhpi":     {"Kealoha", "Kahale", "Akana", "Kamaka", "Fa'amoe"},
	}
	givenNames = map[string][2][]string{ // [female, male]
		"general":  {{"Mary", "Patricia", "Jennifer", "Linda", "Elizabeth", "Barbara", "Susan", "Jessica", "Sarah", "Karen", "Emily", "Hannah", "Olivia", "Emma", "Grace", "Aaliyah", "Keisha", "Ruth", "Nancy", "Zoë"}, {"James", "Robert", "John", "Michael", "David", "William", "Richard", "Joseph", "Thomas", "Charles", "Ethan", "Noah", "Liam", "DeShawn", "Jamal", "Andre", "George", "Kenneth", "Brian", "Kevin"}},
		"hispanic": {{"Maria", "Ana", "Guadalupe", "Sofia", "Isabella", "Lucia", "Carmen", "Rosa", "Valentina", "Ximena"}, {"Jose", "Juan", "Luis", "Carlos", "Miguel", "Jorge", "Alejandro", "Diego", "Santiago", "Mateo"}},
		"zh":       {{"Mei", "Xiu", "Li", "Ying", "Hui"}, {"Wei", "Jun", "Hao", "Ming", "Lei"}},
		"vi":       {{"Linh", "Thi", "Lan", "Mai", "Huong"}, {"Minh", "Duc", "Tuan", "Anh", "Quang"}},
		"ko":       {{"Ji-woo", "Seo-yeon", "Min-ji"}, {"Min-jun", "Seo-jun", "Ji-ho"}},
		"asian":    {{"Priya", "Ananya", "Maria Clara", "Yuki", "Sakura"}, {"Raj", "Arjun", "Jose Rizal", "Hiroshi", "Kenji"}},
		"aian":     {{"Winona", "Aiyana", "Nizhoni"}, {"Ahiga", "Hania", "Tohoni"}},
		"nhpi":     {{"Leilani", "Malia", "Noelani"}, {"Kainoa", "Makoa", "Keoni"}},
	}
)
